"""The length budget of recycled prompts: counting their tokens and shortening quoted attempts.

A "cot" reflection prompt quotes a whole wrong attempt, which can be as long as the longest
completion, so with real models recycled prompts can be several times longer than the
dataset's. TRL's GRPOTrainer (1.16) has no prompt limit of its own: `GRPOConfig` no longer has
`max_prompt_length`, and each prompt is tokenized whole, never truncated, so a prompt past the
model's context fails or degrades generation instead of being cut. Recycling therefore holds
its prompts to a budget when it builds them (`RecyclingConfig.max_prompt_tokens`), by an
explicit rule, and counts what the rule did (`RecyclingStats.budget`, skipped `over-budget`):

- a prompt within the budget is kept as built;
- a "cot" reflection prompt over it is shortened (`over_budget="shorten"`, the default): the
  middle of the attempt gives way to a visible marker `[... N tokens omitted ...]`, and as much
  of its head and its tail (half each, in characters) is kept as fits. The tail holds the wrong
  conclusion and the head the approach, and this keeps the reflection modes split as configured,
  which matters because the longest attempts are often those cut off by the completion limit,
  which have no final answer and so could not be "answer" items. Under `over_budget="answer"` the
  item shows the same rollout's final answer instead ("answer" mode);
- a prompt still over the budget is dropped and counted: a judge or "answer" prompt (the
  question alone is too long), a "cot" prompt that cannot keep `min_attempt_tokens` of its
  attempt, or one whose rollout has no final answer to fall back to. Nothing is cut silently.

Recycling decides which items to build; this module decides how each prompt meets the budget:
`check_budget_settings` validates the rule's settings up front, `PromptBudget.keep_fitting`
drops the judge prompts over it, and `fit_reflection` renders a reflection prompt under the
rule. Tokens are counted by a plain `Callable[[str], int]`: the trainer passes its tokenizer's,
anything else gets `approx_token_count`, so this module, like recycling, stays model-free.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from sparkrl.templates import TemplateSet, reflection_pool, render_template

T = TypeVar("T")
TokenCounter = Callable[[str], int]

OVER_BUDGET_RULES = ("shorten", "answer")
OMITTED_MARKER = "[... {n} tokens omitted ...]"
# English text runs at about four characters per token under the usual BPE tokenizers.
CHARS_PER_TOKEN = 4
DEFAULT_MIN_ATTEMPT_TOKENS = 32


def approx_token_count(text: str) -> int:
    """Tokens of `text` estimated from its length (the fallback when no tokenizer is given)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_budget_settings(
    max_prompt_tokens: object, over_budget: object, min_attempt_tokens: object, reflection_modes: Sequence[str]
) -> None:
    """Raises ValueError on settings of the budget rule (`RecyclingConfig`'s) that cannot work."""
    if max_prompt_tokens is not None and not (_is_int(max_prompt_tokens) and max_prompt_tokens >= 1):
        raise ValueError(f"max_prompt_tokens must be an int >= 1 or None, got {max_prompt_tokens!r}")
    if not (_is_int(min_attempt_tokens) and min_attempt_tokens >= 0):
        raise ValueError(f"min_attempt_tokens must be an int >= 0, got {min_attempt_tokens!r}")
    if over_budget not in OVER_BUDGET_RULES:
        raise ValueError(f"over_budget must be one of {OVER_BUDGET_RULES}, got {over_budget!r}")
    if over_budget == "answer" and "answer" not in reflection_modes:
        raise ValueError('over_budget "answer" needs "answer" among reflection_modes')


@dataclass
class PromptBudget:
    """One `recycle` call's budget (`limit` tokens; None: no budget), its rule for "cot" prompts
    over it (`rule`, one of OVER_BUDGET_RULES; `min_kept`: the fewest tokens a shortened attempt
    shows) and the tally of what the rule did there, reported as `RecyclingStats.budget`."""

    limit: int | None
    count: TokenCounter = approx_token_count
    rule: str = "shorten"
    min_kept: int = DEFAULT_MIN_ATTEMPT_TOKENS
    tally: Counter[str] = field(default_factory=Counter)

    def fits(self, prompt: str) -> bool:
        """Whether `prompt` is within the budget; one that is counts towards `longest_prompt`."""
        if self.limit is None:
            return True
        tokens = self.count(prompt)
        if tokens > self.limit:
            return False
        self.tally["longest_prompt"] = max(self.tally["longest_prompt"], tokens)
        return True

    def keep_fitting(self, items: Sequence[T], prompt: Callable[[T], str], skipped: Counter[str]) -> list[T]:
        """The items whose `prompt(item)` fits, in order; the others are counted in
        `skipped["over-budget"]`."""
        kept = [item for item in items if self.fits(prompt(item))]
        skipped["over-budget"] += len(items) - len(kept)
        return kept

    def report(self) -> dict[str, int]:
        """The tally, every key present (zeros included) so that logged series do not gap."""
        if self.limit is None:
            return {}
        return {key: self.tally[key] for key in ("shortened", "tokens_omitted", "cot_to_answer", "longest_prompt")}


@dataclass(frozen=True)
class Shortened:
    """An attempt whose middle was replaced by the marker."""

    text: str  # head, marker, tail
    kept: int  # tokens of the attempt still shown, head and tail together
    omitted: int  # tokens of the attempt left out, the N of the marker


def _split(attempt: str, keep: int) -> tuple[str, str, str]:
    """Head, middle and tail of the attempt, with `keep` characters in head and tail together."""
    head, tail = keep - keep // 2, keep // 2
    return attempt[:head], attempt[head : len(attempt) - tail], attempt[len(attempt) - tail :]


def _marked(attempt: str, keep: int, count: TokenCounter) -> str:
    head, middle, tail = _split(attempt, keep)
    return f"{head}\n{OMITTED_MARKER.format(n=count(middle))}\n{tail}"


def shorten_to_fit(
    attempt: str, render: Callable[[str], str], budget: int, count: TokenCounter, min_kept: int
) -> Shortened | None:
    """The attempt cut down (head and tail kept, the middle marked as omitted) so that the
    prompt `render(cut.text)` has at most `budget` tokens, keeping as many characters as that
    allows; None when no cut fits while showing at least `min_kept` tokens of the attempt."""
    best: int | None = None
    low, high = 0, len(attempt) - 1  # characters kept; the whole attempt did not fit
    while low <= high:  # token counts grow with the characters kept, so bisect on them
        keep = (low + high) // 2
        if count(render(_marked(attempt, keep, count))) <= budget:
            best, low = keep, keep + 1
        else:
            high = keep - 1
    if best is None:
        return None
    head, middle, tail = _split(attempt, best)
    kept = count(head) + count(tail)
    return Shortened(_marked(attempt, best, count), kept, count(middle)) if kept >= min_kept else None


@dataclass(frozen=True)
class FittedReflection:
    """A reflection prompt within the budget, and how it was built."""

    mode: str  # "cot", or "answer" (also when a "cot" prompt fell back to its final answer)
    template: int  # index in the mode's template pool
    prompt: str
    omitted: int | None = None  # tokens left out of a shortened attempt; None when shown whole


def fit_reflection(
    budget: PromptBudget, templates: TemplateSet, mode: str, question: str, attempt: str, answer: str | None,
    rng: random.Random, skipped: Counter[str], shows_gold: Callable[[str], bool] | None = None,
) -> FittedReflection | None:
    """The reflection prompt on a wrong attempt (its full text `attempt`, its final answer
    `answer`) in `mode`, held to the budget by its rule; None, counted in `skipped`, when it
    cannot fit. The template is drawn with `rng` (once more for an "answer" fallback).
    shows_gold: whether a text shows the ground truth; a shortened attempt whose marker does
    (its count is the gold) is dropped as "cot-shows-gold"."""
    pool = reflection_pool(templates, mode)
    template, prompt = render_template(pool, rng, question=question, attempt=attempt if mode == "cot" else answer)
    if budget.fits(prompt):
        return FittedReflection(mode, template, prompt)
    if mode == "cot" and budget.rule == "answer" and answer is not None:
        fitted = fit_reflection(budget, templates, "answer", question, attempt, answer, rng, skipped)
        if fitted is not None:
            budget.tally["cot_to_answer"] += 1
        return fitted
    if mode == "cot" and budget.rule == "shorten":
        def render(shown: str) -> str:
            return pool[template].format(question=question, attempt=shown)

        cut = shorten_to_fit(attempt, render, budget.limit, budget.count, budget.min_kept)
        if cut is not None and shows_gold is not None and shows_gold(cut.text):
            skipped["cot-shows-gold"] += 1
            return None
        if cut is not None and budget.fits(render(cut.text)):
            budget.tally["shortened"] += 1
            budget.tally["tokens_omitted"] += cut.omitted
            return FittedReflection(mode, template, render(cut.text), cut.omitted)
    skipped["over-budget"] += 1
    return None
