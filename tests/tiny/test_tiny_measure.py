"""Tests for sparkrl.tiny.measure: answer checking and the measurement helpers on an untrained model."""

from __future__ import annotations

from sparkrl.rows import Example
from sparkrl.tiny.measure import complete, greedy_accuracy, group_spread, is_correct
from sparkrl.tiny.model import build_tiny_model
from sparkrl.tiny.tokenizer import build_tokenizer


def test_is_correct_reads_the_last_box_exactly() -> None:
    assert is_correct("1+2=3 \\boxed{3}", "3")
    assert is_correct("\\boxed{4} \\boxed{ 3 }", "3")
    assert not is_correct("\\boxed{3} \\boxed{A}", "3")
    assert not is_correct("3", "3")
    assert not is_correct("\\boxed{33}", "3")


def test_helpers_shape_and_bounds_on_an_untrained_model() -> None:
    tokenizer = build_tokenizer()
    model = build_tiny_model(tokenizer, 0, "nano")
    rows = [Example("12+34", "46"), Example("50+50", "100")]
    replies = complete(model, tokenizer, [r.question for r in rows], samples=3, temperature=1.0, max_new_tokens=4)
    assert [len(r) for r in replies] == [3, 3]
    assert greedy_accuracy(model, tokenizer, rows, max_new_tokens=4) == 0.0
    spread = group_spread(model, tokenizer, rows, group=3, temperature=1.0, max_new_tokens=4)
    assert spread.all_correct + spread.all_wrong + spread.mixed == 1.0
