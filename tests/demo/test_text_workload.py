"""Tests for sparkrl.demo.workload.TextWorkload: the task format options reach every part."""

from __future__ import annotations

import json

import pytest

from sparkrl.benchmarks import PairwiseItem
from sparkrl.demo.workload import TextWorkload
from sparkrl.templates import pairwise_prompt, resolve_templates
from sparkrl.verification import extract_final_answer

FIXED = TextWorkload(asked="tens", explicit_carries=True, templates="tiny-fixed", rl_steps=12)


def test_defaults_are_the_sum_task() -> None:
    workload = TextWorkload()
    assert (workload.asked, workload.explicit_carries, workload.templates, workload.judge_style, workload.policy_steps) == (
        "sum", False, "tiny", "compare", 40)
    assert TextWorkload(quick=True, rl_steps=12).policy_steps == 4


def test_fixed_format_reaches_train_rows_and_held_out_items(tmp_path) -> None:
    assert FIXED.policy_steps == 12
    path = FIXED.write_train_data(tmp_path, 20, seed=0)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert all(row["question"].startswith("tens of ") and len(row["answer"]) == 1 for row in rows)
    for problem in FIXED.reasoning_items(tmp_path, 10, seed=0):
        assert problem.question.startswith("tens of ") and len(problem.answer) == 1
    items = FIXED.judge_items(tmp_path, "pairwise", 20, seed=0)
    assert [item.label for item in items] == ["A", "B"] * 10
    for item in items:
        assert isinstance(item, PairwiseItem)
        a, b = extract_final_answer(item.response_a), extract_final_answer(item.response_b)
        assert a != b and len(a) == len(b) == 1
        prompt = pairwise_prompt(item.question, a, b, templates=resolve_templates(FIXED.templates))
        assert prompt.endswith(f"\nA: {a} B: {b}\n{item.question}")


def test_bad_format_is_rejected_when_the_task_is_built(tmp_path) -> None:
    with pytest.raises(ValueError, match="asked"):
        TextWorkload(asked="units").write_train_data(tmp_path, 5, seed=0)


def test_demo_text_formats(tmp_path) -> None:
    from pathlib import Path

    from sparkrl.demo.pipeline import DemoConfig
    from sparkrl.demo.workload import text_workload

    assert text_workload("sum") == TextWorkload()
    one_bit = text_workload("one-bit", quick=True)
    assert (one_bit.asked, one_bit.explicit_carries, one_bit.templates, one_bit.judge_style, one_bit.quick) == (
        "tens-parity", True, "tiny-fixed", "marks", True)
    assert one_bit.recycling["pairwise_both_orders"] and one_bit.recycling["judge_items_per_group"] == 2.0
    rows = [json.loads(line) for line in one_bit.write_train_data(tmp_path, 20, seed=0).read_text().splitlines()]
    assert all(row["question"].startswith("parity of tens of ") and row["answer"] in ("0", "1") for row in rows)
    assert DemoConfig(out=Path("x")).workload() == text_workload("digit")  # the demo's default
    digit = text_workload("digit")
    assert (digit.asked, digit.digits, digit.direct_answers, digit.judge_style, digit.judge_slip, digit.shipped) == (
        "top", 3, True, "follows", 0.75, "digit")
    assert digit.warm_start_data["comparisons"] > 0 and digit.policy_steps == 120
    digit_rows = [json.loads(line) for line in text_workload("digit", quick=True).write_train_data(
        tmp_path / "digit", 20, seed=0).read_text().splitlines()]
    assert all(row["question"].startswith("hundreds of ") and len(row["answer"]) == 1 for row in digit_rows)
    settings = one_bit.grpo_settings()
    assert (settings["learning_rate"], settings["lr_scheduler_type"], settings["beta"]) == (5e-4, "cosine", 0.3)
    assert TextWorkload().grpo_settings()["learning_rate"] == 3e-4  # the `sum` format keeps its rate
    full = text_workload("one-bit")
    assert (full.warm_start_steps, full.policy_steps, one_bit.policy_steps) == (2000, 240, 4)
    assert DemoConfig(out=Path("x"), text_format="sum").workload() == TextWorkload()
    with pytest.raises(ValueError, match="text format"):
        DemoConfig(out=Path("x"), text_format="two-bit")


@pytest.mark.parametrize("style", ["marks", "checks", "lookup"])
def test_direct_answers_on_the_top_digit_reach_every_part(tmp_path, style) -> None:
    """The task of experiments/digit_demo.py: the hundreds digit of a sum of two 3-digit numbers
    (ten possible answers), answered directly by the policy and worked column by column by the judge."""
    from sparkrl.templates import resolve_templates
    from sparkrl.tiny import WarmStartData, build_pairs
    from sparkrl.tiny.task import boxed_answer

    workload = TextWorkload(digits=3, asked="top", explicit_carries=True, direct_answers=True, judge_slip=0.0,
                            templates="tiny-fixed", judge_style=style, max_completion_length=64)
    rows = [json.loads(line) for line in workload.write_train_data(tmp_path, 80, seed=0).read_text().splitlines()]
    assert all(row["question"].startswith("hundreds of ") and len(row["answer"]) == 1 for row in rows)
    assert len({row["answer"] for row in rows}) == 10  # ten possible answers
    for item in workload.judge_items(tmp_path, "pairwise", 40, seed=0):  # a wrong candidate is always wrong
        assert boxed_answer(item.response_a) != boxed_answer(item.response_b)
    pairs = build_pairs(workload._task(), WarmStartData(policy=20, pointwise=20, pairwise=20, reflection=20), 0,
                        templates=resolve_templates(workload.templates), judge_style=style)
    for pair in pairs:
        if pair.task in ("policy", "reflection"):
            assert pair.completion == "\\boxed{" + pair.label + "}"  # the answer only
            continue
        # Three written columns (judge_slip 0: always right), the comparison, the random verdict.
        own = boxed_answer(pair.completion.split(" ")[3])
        assert pair.completion.count("=") >= 3 and pair.completion.endswith("\\boxed{" + pair.label + "}")
        shown = pair.prompt.split("\n")[-2]
        if style == "lookup" and pair.task == "pairwise":
            letter = "A" if shown.split()[1] == own else "B" if shown.split()[3] == own else "-"
            assert f"={letter}\\boxed{{" in pair.completion
    assert workload.grpo_settings()["max_completion_length"] == 64 and workload.schedule == "alternate"


@pytest.mark.parametrize("quick, expected", [(False, 3), (True, 250)])
def test_warm_start_steps_reach_the_warm_start(tmp_path, monkeypatch, quick, expected) -> None:
    import sparkrl.tiny

    asked = []

    def record(model, tokenizer, pairs, config, seed, progress):
        asked.append(config.steps)
        return sparkrl.tiny.warmstart.WarmStartReport(config.steps, 0.0, 1.0, 1.0)

    monkeypatch.setattr(sparkrl.tiny, "warm_start", record)
    TextWorkload(quick=quick, size="nano", warm_start_steps=3).warm_start(tmp_path, seed=0, progress=lambda line: None)
    assert asked == [expected]
