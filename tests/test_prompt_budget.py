"""Tests for sparkrl.prompt_budget: counting, shortening quoted attempts, the per-call tally,
the rule for reflection prompts over the budget and the checks of its settings."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from sparkrl.prompt_budget import (
    OMITTED_MARKER,
    PromptBudget,
    approx_token_count,
    check_budget_settings,
    fit_reflection,
    shorten_to_fit,
)
from sparkrl.templates import DEFAULT_TEMPLATES

MARKER = re.compile(r"\n\[\.\.\. (\d+) tokens omitted \.\.\.\]\n")


def _prompt(attempt: str) -> str:
    return f"Question: what is 6*7?\nThis attempt is wrong:\n{attempt}\nSolve it again."


def test_approx_count_is_about_four_characters_per_token():
    assert [approx_token_count(t) for t in ("", "abc", "abcd", "abcde")] == [0, 1, 1, 2]


def test_a_shortened_attempt_keeps_its_head_and_tail_around_a_counted_marker():
    attempt = "First, 6*7 means six sevens. " + "x" * 500 + " So the answer is \\boxed{41}."
    cut = shorten_to_fit(attempt, _prompt, budget=200, count=len, min_kept=10)
    assert cut is not None and len(_prompt(cut.text)) <= 200
    head, tail = MARKER.split(cut.text)[0], MARKER.split(cut.text)[2]
    assert attempt.startswith(head) and attempt.endswith(tail) and abs(len(head) - len(tail)) <= 1
    assert tail.endswith("\\boxed{41}.")  # the wrong conclusion stays visible
    assert int(MARKER.search(cut.text).group(1)) == cut.omitted == len(attempt) - len(head) - len(tail)
    assert cut.kept == len(head) + len(tail)
    # as much as fits is kept: one more character each side would not fit
    assert len(_prompt(cut.text)) >= 200 - 2


def test_an_attempt_that_cannot_keep_enough_is_not_shortened():
    attempt = "y" * 300
    assert shorten_to_fit(attempt, _prompt, budget=len(_prompt("")) - 1, count=len, min_kept=0) is None
    # the marker alone fits, but keeping 50 characters of the attempt does not
    room = len(_prompt(OMITTED_MARKER.format(n=300))) + 2
    assert shorten_to_fit(attempt, _prompt, budget=room + 20, count=len, min_kept=50) is None
    assert shorten_to_fit(attempt, _prompt, budget=room + 60, count=len, min_kept=50) is not None


@pytest.mark.parametrize("budget", [60, 90, 150])
def test_shortening_holds_for_a_coarse_counter(budget):
    attempt = "step by step, " * 80 + "so 17"
    cut = shorten_to_fit(attempt, _prompt, budget, approx_token_count, min_kept=1)
    assert cut is not None and approx_token_count(_prompt(cut.text)) <= budget
    assert cut.text.endswith("so 17")


def test_the_budget_tallies_only_with_a_limit():
    unlimited = PromptBudget(None)
    assert unlimited.fits("z" * 10_000) and unlimited.report() == {}
    budget = PromptBudget(10, count=len)
    assert budget.fits("a" * 7) and budget.fits("a" * 10) and not budget.fits("a" * 11)
    assert budget.report() == {"shortened": 0, "tokens_omitted": 0, "cot_to_answer": 0, "longest_prompt": 10}


def test_keep_fitting_drops_and_counts_the_prompts_over_the_budget():
    budget, skipped = PromptBudget(5, count=len), Counter()
    assert budget.keep_fitting(["abc", "abcdefg", "abcde"], str, skipped) == ["abc", "abcde"]
    assert skipped == {"over-budget": 1} and budget.tally["longest_prompt"] == 5


ATTEMPT = "think " * 300 + "so \\boxed{41}"


def _fit(rule, limit, answer="41", shows_gold=None):
    budget, skipped = PromptBudget(limit, len, rule, min_kept=10), Counter()
    fitted = fit_reflection(
        budget, DEFAULT_TEMPLATES, "cot", "What is 6*7?", ATTEMPT, answer, random.Random(0), skipped, shows_gold
    )
    return fitted, budget, skipped


def test_a_cot_reflection_over_the_budget_follows_its_rule():
    whole, budget, skipped = _fit("shorten", None)
    assert whole.mode == "cot" and ATTEMPT in whole.prompt and whole.omitted is None and budget.report() == {}
    cut, budget, skipped = _fit("shorten", 800)
    assert cut.mode == "cot" and len(cut.prompt) <= 800 and cut.omitted > 0 and OMITTED_MARKER[:4] in cut.prompt
    assert budget.tally["shortened"] == 1 and budget.tally["tokens_omitted"] == cut.omitted and not +skipped
    fallback, budget, skipped = _fit("answer", 800)
    assert fallback.mode == "answer" and "think" not in fallback.prompt and "41" in fallback.prompt
    assert budget.tally["cot_to_answer"] == 1 and not +skipped


def test_a_reflection_that_cannot_fit_is_dropped_and_counted():
    assert _fit("answer", 800, answer=None)[0::2] == (None, {"over-budget": 1})
    assert _fit("shorten", 60)[0::2] == (None, {"over-budget": 1})  # not even the instruction fits
    # a cut whose marker would show the ground truth
    assert _fit("shorten", 800, shows_gold=lambda text: True)[0::2] == (None, {"cot-shows-gold": 1})


@pytest.mark.parametrize(("settings", "message"), [
    ((-5, "shorten", 32, ("cot",)), "max_prompt_tokens must be an int >= 1 or None, got -5"),
    ((True, "shorten", 32, ("cot",)), "max_prompt_tokens must be an int >= 1 or None, got True"),
    ((None, "shorten", 1.5, ("cot",)), "min_attempt_tokens must be an int >= 0, got 1.5"),
    ((None, "cut", 32, ("cot",)), "over_budget must be one of ('shorten', 'answer'), got 'cut'"),
    ((None, "answer", 32, ("cot",)), 'over_budget "answer" needs "answer" among reflection_modes'),
])
def test_bad_budget_settings_are_named_with_what_is_accepted(settings, message):
    with pytest.raises(ValueError) as error:
        check_budget_settings(*settings)
    assert str(error.value) == message
    check_budget_settings(None, "shorten", 0, ("cot",))
    check_budget_settings(1, "answer", 32, ("cot", "answer"))
