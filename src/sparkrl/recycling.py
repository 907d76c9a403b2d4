"""Rollout recycling: turning groups of scored rollouts into judge and reflection items.

A `Group` is one prompt of a GRPO step with its rollouts, each rollout carrying its full
text, its extracted final answer (or None) and its reward. `recycle` turns a batch of groups
into verifiable `Example`s of three tasks, following SPARK's per-group rules:

- pointwise judging: question + one final answer; label `Yes`/`No`, or `A`/`B` in the
  option-letter variant (A = correct). All-correct groups give one on a correct answer,
  all-wrong groups one on a wrong answer; mixed groups give one (from a random side) with
  probability `mixed_pointwise_prob`, else a pairwise item.
- pairwise judging: question + one correct and one wrong final answer as (A)/(B); the label
  is the letter of the correct one.
- reflection: question + a wrong attempt (its full text in "cot" mode, its final answer in
  "answer" mode); the label is the ground truth. One per group that has a wrong rollout.

The ground truth may be a bare answer or a full solution; its final answer is read with
`sparkrl.verification.extract_final_answer`, as the verifier reads it.

Judge prompts are built from the template, the question and the shown final answers only:
never the reasoning, the ground truth or the rewards. The module is pure and model-free;
randomness comes from one seed, with an independent stream per stage so that switching one
kind of item off does not reshuffle the others.

Departures from the authors' code, and why:
- Balancing (on by default, off reproduces their selection): among pointwise items of each
  variant the positive and negative labels differ by at most one, and among pairwise items
  the correct answer sits at A and at B equally often (within one). Their all-correct groups
  only ever produced "correct" items, so an always-Yes judge scored well. The label balance
  can be carried from call to call (`recycle(..., label_balance=...)`, as the trainer does),
  so that it holds over a whole run, not only within each round: with a strong policy nearly
  every unanimous group is all-correct, and one surplus "Yes" per round added up to 48 "Yes"
  against 7 "No" in a 40-step demo run. Optionally the pointwise and pairwise counts are
  balanced too.
- Caps scale with the batch: by default 0.5 judge and 0.5 reflection items per group (their
  32 + 32 per batch of 64 prompts, for any batch size); absolute caps are an option.
- Rollouts without an extractable answer are never judge candidates (they may be a "cot"
  reflection attempt), a wrong rollout whose answer equals the ground truth as a string is
  treated as a reward error and not used, a wrong rollout whose text shows the ground truth
  (it reached the answer, then moved on) is never a "cot" attempt, since the prompt would
  hand the answer over (it may still be an "answer" attempt), and a pair whose two answers
  are the same string is never built. Every such case is counted in `RecyclingStats`.
- A length budget (`max_prompt_tokens`, off here; the trainer sets it from the model's context):
  a "cot" prompt over it shows its attempt's head and tail around an "[... N tokens omitted ...]"
  marker (or the attempt's final answer instead), and a prompt that still does not fit is dropped,
  never cut silently (sparkrl.prompt_budget). The authors quote attempts whole.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from sparkrl.checks import is_number, is_probability
from sparkrl.prompt_budget import (
    DEFAULT_MIN_ATTEMPT_TOKENS,
    PromptBudget,
    TokenCounter,
    approx_token_count,
    check_budget_settings,
    fit_reflection,
)
from sparkrl.rows import RECYCLED_TASKS, TASK_PAIRWISE, TASK_POINTWISE, TASK_REFLECTION, Example
from sparkrl.templates import (
    DEFAULT_TEMPLATES,
    REFLECTION_MODES,
    TemplateSet,
    render_template,
    resolve_templates,
)
from sparkrl.verification import extract_final_answer

T = TypeVar("T")

# Source "mode" of pointwise items, by variant.
MODE_YES_NO = "yes_no"
MODE_LETTER = "letter"
POSITIVE_LABELS = frozenset({"Yes", "A"})  # a pointwise item's label when its candidate is correct
MODE_PAIRWISE = "pairwise"


@dataclass(frozen=True)
class Rollout:
    """One sampled response: its full text, its reward, its extracted final answer.

    A whitespace-only answer counts as no answer; answers are stored stripped.
    """

    text: str
    reward: float
    answer: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise ValueError(f"rollout text must be a string, got {type(self.text).__name__}")
        if not isinstance(self.reward, (int, float)) or not math.isfinite(self.reward):
            raise ValueError(f"rollout reward must be a finite number, got {self.reward!r}")
        if self.answer is not None and not isinstance(self.answer, str):
            raise ValueError(f"rollout answer must be a string or None, got {type(self.answer).__name__}")
        object.__setattr__(self, "reward", float(self.reward))
        object.__setattr__(self, "answer", (self.answer or "").strip() or None)


@dataclass(frozen=True)
class Group:
    """One prompt with its rollouts. `answer` is the ground truth; `source` is its provenance."""

    question: str
    answer: str
    rollouts: tuple[Rollout, ...]
    images: tuple[str, ...] = ()
    source: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.question, str) or not self.question.strip():
            raise ValueError("group question must be a non-empty string")
        if not isinstance(self.answer, str) or not self.answer.strip():
            raise ValueError("group answer (the ground truth) must be a non-empty string")
        rollouts = tuple(self.rollouts)
        if not rollouts or not all(isinstance(r, Rollout) for r in rollouts):
            raise ValueError("group rollouts must be a non-empty sequence of Rollout")
        images = tuple(self.images)
        if not all(isinstance(image, str) for image in images):
            raise ValueError("group images must be strings (file paths)")
        object.__setattr__(self, "rollouts", rollouts)
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "source", dict(self.source))


def _check_cap(name: str, value: object, kind: type) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise ValueError(f"{name} must be a {kind.__name__} or None, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be >= 0 or None, got {value!r}")


def _check_choice(name: str, values: object, allowed: Sequence[str]) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, (tuple, list)) or not values:
        raise ValueError(f"{name} must be a non-empty tuple drawn from {tuple(allowed)}, got {values!r}")
    if len(set(values)) != len(values) or not set(values) <= set(allowed):
        raise ValueError(f"{name} must hold distinct values from {tuple(allowed)}, got {values!r}")
    return tuple(values)


@dataclass(frozen=True)
class RecyclingConfig:
    """Selection rules of `recycle` (defaults: the authors' rules plus balancing).

    kinds: which recycled tasks to build (ablations: only pointwise, only pairwise, ...).
    mixed_pointwise_prob: in a mixed group, chance of a pointwise instead of a pairwise item.
    letter_prob: chance that a pointwise item uses the A/B option-letter variant.
    reflection_modes: allowed reflection modes; groups are split evenly between them as far
        as their attempts allow.
    judge_items_per_group, reflection_items_per_group: caps relative to the number of groups
        (value x groups, rounded up so that one group still yields items; None: no cap). The
        authors keep 32 + 32 items per batch of 64 prompts, i.e. 0.5 + 0.5 per group.
    max_judge_items, max_reflection_items: absolute caps per call (None: no cap). When both
        caps of a kind are set the smaller holds.
    balance_labels: pointwise positive/negative counts differ by at most 1, per variant (over
        every call that carries the balance on, see `recycle`; within the call otherwise).
    balance_positions: pairwise items with the correct answer at A and at B differ by at most 1.
    balance_kinds: pointwise and pairwise item counts differ by at most 1.
    pairwise_both_orders: a mixed group's pair gives two pairwise items, the correct answer at
        (A) in one and at (B) in the other (caps count both). For tasks whose pairs all look
        alike, such as one-bit answers, this doubles what each mixed group teaches the judge and
        shows it the same candidates in both places. Off by default (the authors: one item).
        A cap may keep one item of a pair and drop the other; then the (A)/(B) balance holds
        for the other items but not for that one.
    reflect_unextracted: a wrong rollout without an extractable answer may be a "cot" attempt.
    drop_wrong_matching_gold: do not use a wrong rollout whose answer is the ground truth as a
        string (whitespace collapsed): its reward is more likely an error than its answer.
    drop_cot_showing_gold: never show as a "cot" attempt a wrong rollout whose text contains
        the ground truth as a whole token (`42` in "6*7 = 42", not in "142" or "4.2"): the
        reflection prompt would hand over the answer. It may still be an "answer" attempt.
    correct_at, wrong_at: reward >= correct_at is correct, reward <= wrong_at is wrong; rewards
        in between are not used.
    max_prompt_tokens: the most tokens of a recycled prompt's text, as counted by the counter
        passed to `recycle` (the trainer passes its tokenizer's and lowers the budget to what the
        model's context leaves; about four characters per token otherwise). None: no budget.
    over_budget: what a "cot" reflection prompt over the budget becomes: "shorten" (the
        attempt's head and tail around an "[... N tokens omitted ...]" marker) or "answer" (the
        same rollout's final answer, in "answer" mode). A prompt still over is dropped.
    min_attempt_tokens: a shortened attempt shows at least this many of its tokens, or its item
        is dropped (a quote shorter than that shows no reasoning).
    """

    kinds: tuple[str, ...] = RECYCLED_TASKS
    mixed_pointwise_prob: float = 0.3
    letter_prob: float = 0.5
    reflection_modes: tuple[str, ...] = REFLECTION_MODES
    judge_items_per_group: float | None = 0.5
    reflection_items_per_group: float | None = 0.5
    max_judge_items: int | None = None
    max_reflection_items: int | None = None
    balance_labels: bool = True
    balance_positions: bool = True
    balance_kinds: bool = False
    pairwise_both_orders: bool = False
    reflect_unextracted: bool = True
    drop_wrong_matching_gold: bool = True
    drop_cot_showing_gold: bool = True
    correct_at: float = 1.0
    wrong_at: float = 0.0
    max_prompt_tokens: int | None = None
    over_budget: str = "shorten"
    min_attempt_tokens: int = DEFAULT_MIN_ATTEMPT_TOKENS
    templates: TemplateSet | str = DEFAULT_TEMPLATES  # a TemplateSet, `default`, `tiny` or 'module:ATTRIBUTE'

    def __post_init__(self) -> None:
        # Lists (as read from YAML) are accepted and stored as tuples.
        object.__setattr__(self, "kinds", _check_choice("kinds", self.kinds, RECYCLED_TASKS))
        object.__setattr__(
            self, "reflection_modes", _check_choice("reflection_modes", self.reflection_modes, REFLECTION_MODES)
        )
        for name in ("mixed_pointwise_prob", "letter_prob"):
            value = getattr(self, name)
            if not is_probability(value):
                raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
        _check_cap("max_judge_items", self.max_judge_items, int)
        _check_cap("max_reflection_items", self.max_reflection_items, int)
        _check_cap("judge_items_per_group", self.judge_items_per_group, float)
        _check_cap("reflection_items_per_group", self.reflection_items_per_group, float)
        for name in ("correct_at", "wrong_at"):
            value = getattr(self, name)
            if not is_number(value) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if not self.wrong_at < self.correct_at:
            raise ValueError(f"wrong_at ({self.wrong_at}) must be below correct_at ({self.correct_at})")
        check_budget_settings(self.max_prompt_tokens, self.over_budget, self.min_attempt_tokens, self.reflection_modes)
        # A name or import path (as read from YAML) is resolved to its TemplateSet.
        object.__setattr__(self, "templates", resolve_templates(self.templates))

    def judge_cap(self, n_groups: int) -> int | None:
        """The number of judge items one call may keep for `n_groups` groups (None: no cap)."""
        return _cap(self.max_judge_items, self.judge_items_per_group, n_groups)

    def reflection_cap(self, n_groups: int) -> int | None:
        """The number of reflection items one call may keep for `n_groups` groups (None: no cap)."""
        return _cap(self.max_reflection_items, self.reflection_items_per_group, n_groups)


def _cap(absolute: int | None, per_group: float | None, n_groups: int) -> int | None:
    caps = [c for c in (absolute, None if per_group is None else math.ceil(per_group * n_groups - 1e-9)) if c is not None]
    return min(caps) if caps else None


@dataclass(frozen=True)
class RecyclingStats:
    """What one `recycle` call built and skipped.

    outcomes: groups by kind: all_correct, all_wrong, mixed, no_usable_reward.
    items: items built per task; labels: per task, items per label; modes: items per
        source mode (yes_no, letter, pairwise, cot, answer).
    skipped: counts per reason (see docs/recycling.md for the list).
    label_balance: per pointwise variant, positive minus negative items, including the balance
        carried into the call; pass it to the next call to balance over a run.
    budget: with a prompt budget, what its rule did: "cot" prompts `shortened` and the
        `tokens_omitted` from them, `cot_to_answer` fallbacks, the `longest_prompt` kept (tokens);
        items dropped for length are `skipped["over-budget"]`. Empty without a budget.
    """

    groups: int
    rollouts: int
    rollouts_without_answer: int
    outcomes: dict[str, int]
    items: dict[str, int]
    labels: dict[str, dict[str, int]]
    modes: dict[str, int]
    skipped: dict[str, int]
    label_balance: dict[str, int] = field(default_factory=dict)
    budget: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dicts, JSON-serialisable."""
        return {
            "groups": self.groups,
            "rollouts": self.rollouts,
            "rollouts_without_answer": self.rollouts_without_answer,
            "outcomes": dict(self.outcomes),
            "items": dict(self.items),
            "labels": {task: dict(labels) for task, labels in self.labels.items()},
            "modes": dict(self.modes),
            "skipped": dict(self.skipped),
            "label_balance": dict(self.label_balance),
            "budget": dict(self.budget),
        }

    def flat(self) -> dict[str, int]:
        """One number per key, nested keys joined by "/" (e.g. "skipped/judge-cap"), for loggers;
        without `label_balance`, which is not this call's alone (the trainer logs it itself)."""
        flat: dict[str, int] = {}
        for key, value in self.to_dict().items():
            if key == "label_balance":
                continue
            if not isinstance(value, dict):
                flat[key] = value
                continue
            for sub, inner in value.items():
                if isinstance(inner, dict):
                    flat.update({f"{key}/{sub}/{label}": n for label, n in inner.items()})
                else:
                    flat[f"{key}/{sub}"] = inner
        return flat


def _norm(text: str) -> str:
    return " ".join(text.split())


def _gold(group: Group) -> str:
    """The group's final answer, as the verifier reads the ground truth."""
    return _norm(extract_final_answer(group.answer) or group.answer)


def _shows_gold(group: Group, text: str) -> bool:
    """Whether `text` contains the group's final answer as a whole token."""
    gold = _WholeToken.of(_gold(group))
    return gold is not None and gold.in_text(text)


_THOUSANDS_COMMA = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def _is_ascii_alnum(char: str) -> bool:
    return char.isascii() and char.isalnum()


@dataclass(frozen=True)
class _WholeToken:
    """Finds an answer in a text as a whole token, not inside a longer number or word (`42` is
    in "6*7 = 42." but not in "142", "4.2" or "42.5"); thousands commas are ignored and spaces
    around symbols are free (`x^2-1` is in "x^2 - 1")."""

    pattern: re.Pattern[str]  # the answer and its end boundary; the start is checked apart
    bounded_start: bool  # the answer starts with a letter or digit, which must start a token
    core: str  # a piece every match contains: a cheap test before the regular expression

    @classmethod
    def of(cls, answer: str) -> _WholeToken | None:
        answer = _THOUSANDS_COMMA.sub("", "".join(answer.split()))
        if not answer:
            return None
        pattern = re.escape(answer[0])
        for previous, char in zip(answer, answer[1:]):
            joined = _is_ascii_alnum(previous) and _is_ascii_alnum(char)
            pattern += ("" if joined else r"\s*") + re.escape(char)
        if _is_ascii_alnum(answer[-1]):
            pattern += r"(?![0-9A-Za-z])(?!\.[0-9])"
        core = max(re.findall(r"[0-9A-Za-z]+", answer), key=len, default=answer[0])
        return cls(re.compile(pattern), _is_ascii_alnum(answer[0]), core)

    def in_text(self, text: str) -> bool:
        if "," in text:
            text = _THOUSANDS_COMMA.sub("", text)
        if self.core not in text:
            return False
        # A leading look-behind would cost a check at every position; a literal start is fast.
        match = self.pattern.search(text)
        while match is not None:
            if not (self.bounded_start and _continues_token(text, match.start())):
                return True
            match = self.pattern.search(text, match.start() + 1)
        return False


def _continues_token(text: str, start: int) -> bool:
    """Whether `text[start:]` continues a number or word begun before `start`."""
    before = text[max(0, start - 2) : start]
    if not before:
        return False
    return _is_ascii_alnum(before[-1]) or (before[-1] == "." and len(before) == 2 and before[0].isdigit())


@dataclass(frozen=True)
class _Sides:
    """The rollout indices of one group that each role may use."""

    correct: tuple[int, ...]
    wrong: tuple[int, ...]
    correct_candidates: tuple[int, ...]  # correct, with an answer
    wrong_candidates: tuple[int, ...]  # wrong, with an answer, usable
    cot_attempts: tuple[int, ...]  # wrong, usable, with text that does not show the gold

    @property
    def outcome(self) -> str:
        if self.correct and self.wrong:
            return "mixed"
        if self.correct:
            return "all_correct"
        return "all_wrong" if self.wrong else "no_usable_reward"


def _classify(group: Group, config: RecyclingConfig, skipped: Counter[str]) -> _Sides:
    gold = _gold(group)
    cot_on = TASK_REFLECTION in config.kinds and "cot" in config.reflection_modes
    gold_token = _WholeToken.of(gold) if config.drop_cot_showing_gold and cot_on else None
    correct, wrong, correct_candidates, wrong_candidates, cot_attempts = [], [], [], [], []
    for index, rollout in enumerate(group.rollouts):
        if rollout.reward >= config.correct_at:
            correct.append(index)
            if rollout.answer is not None:
                correct_candidates.append(index)
            continue
        if rollout.reward > config.wrong_at:
            skipped["reward-ambiguous"] += 1
            continue
        wrong.append(index)
        if config.drop_wrong_matching_gold and rollout.answer is not None and _norm(rollout.answer) == gold:
            skipped["wrong-answer-equals-gold"] += 1
            continue
        if rollout.answer is not None:
            wrong_candidates.append(index)
        if not rollout.text.strip() or (rollout.answer is None and not config.reflect_unextracted):
            continue
        if gold_token is not None and gold_token.in_text(rollout.text):
            skipped["cot-shows-gold"] += 1
        else:
            cot_attempts.append(index)
    return _Sides(*(tuple(x) for x in (correct, wrong, correct_candidates, wrong_candidates, cot_attempts)))


@dataclass(frozen=True)
class _JudgeDraft:
    """A judge item before rendering. Pointwise: one rollout; pairwise: (correct, wrong)."""

    group: int
    kind: str
    rollouts: tuple[int, ...]
    letters: bool = False
    positive: bool = True
    correct_at_a: bool | None = None  # a pairwise draft's fixed position (both-orders mode)

    def tags(self, config: RecyclingConfig) -> list[tuple[str, int]]:
        """Balance axes this draft counts on, with its sign (+1 or -1) on each."""
        tags = []
        if config.balance_labels and self.kind == TASK_POINTWISE:
            tags.append((MODE_LETTER if self.letters else MODE_YES_NO, 1 if self.positive else -1))
        if config.balance_kinds and {TASK_POINTWISE, TASK_PAIRWISE} <= set(config.kinds):
            tags.append(("kind", 1 if self.kind == TASK_POINTWISE else -1))
        return tags


def _pick_pair(group: Group, sides: _Sides, rng: random.Random, skipped: Counter[str]) -> tuple[int, int] | None:
    if not sides.correct_candidates or not sides.wrong_candidates:
        skipped["pair-missing-side"] += 1
        return None
    answers = [None if r.answer is None else _norm(r.answer) for r in group.rollouts]
    pairs = [(c, w) for c in sides.correct_candidates for w in sides.wrong_candidates if answers[c] != answers[w]]
    if not pairs:
        # Noisy rewards can score the same answer both ways; such a pair has no right letter.
        skipped["pair-same-answer"] += 1
        return None
    return rng.choice(pairs)


def _draft_judge(
    index: int, group: Group, sides: _Sides, config: RecyclingConfig, rng: random.Random,
    label_balance: Counter[str], skipped: Counter[str],
) -> list[_JudgeDraft]:
    pointwise_on = TASK_POINTWISE in config.kinds
    if sides.outcome == "mixed" and TASK_PAIRWISE in config.kinds:
        if not pointwise_on or rng.random() >= config.mixed_pointwise_prob:
            pair = _pick_pair(group, sides, rng, skipped)
            if pair is not None:
                if config.pairwise_both_orders:
                    return [_JudgeDraft(index, TASK_PAIRWISE, pair, correct_at_a=at_a) for at_a in (True, False)]
                return [_JudgeDraft(index, TASK_PAIRWISE, pair)]
    if not pointwise_on:
        return []
    sides_available = [s for s, c in ((True, sides.correct_candidates), (False, sides.wrong_candidates)) if c]
    if not sides_available:
        skipped["judge-no-candidate"] += 1
        return []
    letters = rng.random() < config.letter_prob
    variant = MODE_LETTER if letters else MODE_YES_NO
    if len(sides_available) == 2 and config.balance_labels and label_balance[variant] != 0:
        positive = label_balance[variant] < 0  # lean towards the label seen less so far
    else:
        positive = rng.choice(sides_available)
    label_balance[variant] += 1 if positive else -1
    candidates = sides.correct_candidates if positive else sides.wrong_candidates
    return [_JudgeDraft(index, TASK_POINTWISE, (rng.choice(candidates),), letters, positive)]


def _take_balanced(
    items: Sequence[T], limit: int | None, tags: Callable[[T], list[tuple[str, int]]], rng: random.Random,
    start: Mapping[str, int] | None = None,
) -> list[T]:
    """Up to `limit` items, in random order, such that on every balance axis the signs of the
    taken items, added to the axis' `start`, sum to -1, 0 or 1 (an axis that starts further out
    only takes items that bring it back). Items that would break an axis are retried on later
    passes, so a single axis from 0 keeps min(n+, n- + 1) + min(n-, n+ + 1) items when not capped."""
    pending = list(items)
    rng.shuffle(pending)
    taken: list[T] = []
    sums: Counter[str] = Counter(start or {})
    progress = True
    while pending and progress and (limit is None or len(taken) < limit):
        progress, retry = False, []
        for item in pending:
            item_tags = tags(item)
            if (limit is None or len(taken) < limit) and all(_keeps_balance(sums[a], s) for a, s in item_tags):
                taken.append(item)
                for axis, sign in item_tags:
                    sums[axis] += sign
                progress = True
            else:
                retry.append(item)
        pending = retry
    return taken


def _keeps_balance(current: int, sign: int) -> bool:
    """Whether an item of `sign` may join an axis at `current`: it stays within one of even,
    or moves back towards it."""
    after = current + sign
    return abs(after) <= 1 or abs(after) < abs(current)


def _assign_positions(drafts: Sequence[_JudgeDraft], balance: bool, rng: random.Random) -> list[bool | None]:
    """Per draft, whether the correct answer is shown as (A); None for pointwise drafts. Drafts
    with a fixed position keep it; the others are balanced among themselves."""
    at_a: list[bool | None] = [d.correct_at_a for d in drafts]
    pairwise = [i for i, d in enumerate(drafts) if d.kind == TASK_PAIRWISE and d.correct_at_a is None]
    if not balance:
        for i in pairwise:
            at_a[i] = rng.random() < 0.5
        return at_a
    rng.shuffle(pairwise)
    half, odd = divmod(len(pairwise), 2)
    for rank, i in enumerate(pairwise):
        at_a[i] = rank < half if rank < 2 * half else rng.random() < 0.5
    return at_a


def _render_judge(
    draft: _JudgeDraft, group: Group, correct_at_a: bool | None, templates: TemplateSet, rng: random.Random
) -> Example:
    answers = [r.answer or "" for r in group.rollouts]
    if draft.kind == TASK_POINTWISE:
        pool = templates.pointwise_letter if draft.letters else templates.pointwise
        (rollout,) = draft.rollouts
        template, prompt = render_template(pool, rng, question=group.question, candidate=answers[rollout])
        label = ("A" if draft.positive else "B") if draft.letters else ("Yes" if draft.positive else "No")
        mode, shown = (MODE_LETTER if draft.letters else MODE_YES_NO), [rollout]
    else:
        correct, wrong = draft.rollouts
        shown = [correct, wrong] if correct_at_a else [wrong, correct]
        template, prompt = render_template(
            templates.pairwise, rng, question=group.question,
            candidate_a=answers[shown[0]], candidate_b=answers[shown[1]],
        )
        label, mode = ("A" if correct_at_a else "B"), MODE_PAIRWISE
    return _example(prompt, label, draft.kind, group, draft.group, shown, mode, template)


def _example(
    prompt: str, label: str, task: str, group: Group, index: int, rollouts: list[int], mode: str, template: int,
    omitted: int | None = None,
) -> Example:
    source = {"group": index, "rollouts": rollouts, "mode": mode, "template": template,
              "group_source": dict(group.source)}
    if omitted is not None:
        source["tokens_omitted"] = omitted
    return Example(question=prompt, answer=label, images=group.images, task=task, source=source)


def _judge_items(
    groups: Sequence[Group], sides: Sequence[_Sides], config: RecyclingConfig, seed: int, skipped: Counter[str],
    carried: Mapping[str, int], budget: PromptBudget,
) -> list[Example]:
    rng = random.Random(f"{seed}:judge")
    label_balance: Counter[str] = Counter(carried)
    drafts = [
        d for i, (g, s) in enumerate(zip(groups, sides))
        for d in _draft_judge(i, g, s, config, rng, label_balance, skipped)
    ]
    tags = partial(_JudgeDraft.tags, config=config)
    start = carried if config.balance_labels else None
    balanced = _take_balanced(drafts, None, tags, rng, start)
    skipped["judge-balance"] += len(drafts) - len(balanced)
    kept = _take_balanced(balanced, config.judge_cap(len(groups)), tags, rng, start)
    skipped["judge-cap"] += len(balanced) - len(kept)
    kept.sort(key=lambda d: d.group)
    at_a = _assign_positions(kept, config.balance_positions, rng)
    rendered = [_render_judge(d, groups[d.group], a, config.templates, rng) for d, a in zip(kept, at_a)]
    # A judge prompt quotes only final answers: over the budget, its question alone is too long.
    # Dropping it can leave this call's labels off balance; the carried balance evens it out later.
    return budget.keep_fitting(rendered, lambda item: item.question, skipped)


def _assign_modes(feasible: Sequence[tuple[str, ...]], rng: random.Random) -> list[str]:
    """One mode per group, as even a split as each group's feasible modes allow."""
    modes: list[str | None] = [m[0] if len(m) == 1 else None for m in feasible]
    counts = Counter(m for m in modes if m is not None)
    flexible = [i for i, m in enumerate(modes) if m is None]
    rng.shuffle(flexible)
    for i in flexible:
        fewest = min(counts[m] for m in feasible[i])
        mode = rng.choice([m for m in feasible[i] if counts[m] == fewest])
        modes[i] = mode
        counts[mode] += 1
    return [m for m in modes if m is not None]


def _reflection_items(
    groups: Sequence[Group], sides: Sequence[_Sides], config: RecyclingConfig, seed: int, skipped: Counter[str],
    budget: PromptBudget,
) -> list[Example]:
    rng = random.Random(f"{seed}:reflection")
    eligible: list[tuple[int, dict[str, tuple[int, ...]]]] = []
    for index, s in enumerate(sides):
        if not s.wrong:
            continue
        attempts = {"cot": s.cot_attempts, "answer": s.wrong_candidates}
        attempts = {m: attempts[m] for m in config.reflection_modes if attempts[m]}
        if attempts:
            eligible.append((index, attempts))
        else:
            skipped["reflection-no-attempt"] += 1
    cap = config.reflection_cap(len(groups))
    kept = rng.sample(eligible, len(eligible) if cap is None else min(cap, len(eligible)))
    kept.sort(key=lambda entry: entry[0])
    skipped["reflection-cap"] += len(eligible) - len(kept)
    modes = _assign_modes([tuple(attempts) for _, attempts in kept], rng)
    items = []
    for (index, attempts), mode in zip(kept, modes):
        group, rollout = groups[index], rng.choice(attempts[mode])
        attempt = group.rollouts[rollout]
        shows_gold = partial(_shows_gold, group) if config.drop_cot_showing_gold else None
        fitted = fit_reflection(
            budget, config.templates, mode, group.question, attempt.text, attempt.answer, rng, skipped, shows_gold
        )
        if fitted is not None:
            items.append(_example(fitted.prompt, group.answer, TASK_REFLECTION, group, index, [rollout], fitted.mode,
                                  fitted.template, fitted.omitted))
    return items


def _stats(
    groups: Sequence[Group], sides: Sequence[_Sides], items: Sequence[Example], skipped: Counter[str],
    carried: Mapping[str, int], budget: PromptBudget,
) -> RecyclingStats:
    labels: dict[str, Counter[str]] = {task: Counter() for task in (TASK_POINTWISE, TASK_PAIRWISE)}
    balance: Counter[str] = Counter(carried)
    for item in items:
        if item.task in labels:
            labels[item.task][item.answer] += 1
        if item.task == TASK_POINTWISE:
            balance[item.source["mode"]] += 1 if item.answer in POSITIVE_LABELS else -1
    return RecyclingStats(
        groups=len(groups),
        rollouts=sum(len(g.rollouts) for g in groups),
        rollouts_without_answer=sum(r.answer is None for g in groups for r in g.rollouts),
        outcomes=dict(Counter(s.outcome for s in sides)),
        items={task: sum(item.task == task for item in items) for task in RECYCLED_TASKS},
        labels={task: dict(sorted(c.items())) for task, c in labels.items()},
        modes=dict(Counter(item.source["mode"] for item in items)),
        skipped={reason: n for reason, n in sorted(skipped.items()) if n},
        label_balance=dict(sorted(balance.items())),
        budget=budget.report(),
    )


def recycle(
    groups: Sequence[Group], config: RecyclingConfig, seed: int, label_balance: Mapping[str, int] | None = None,
    count_tokens: TokenCounter = approx_token_count,
) -> tuple[list[Example], RecyclingStats]:
    """Judge and reflection items built from `groups`, and statistics of what was built.

    Deterministic for a given (groups, config, seed, label_balance). Items come judge first,
    then reflection, each in group order; every item's `source` names its group, rollouts,
    mode and template.
    label_balance: the pointwise label balance of earlier calls (their `stats.label_balance`);
    with `balance_labels` this call then keeps the balance of all of them together within one.
    count_tokens: counts the tokens of a prompt for `config.max_prompt_tokens`.
    """
    skipped: Counter[str] = Counter()
    budget = PromptBudget(config.max_prompt_tokens, count_tokens, config.over_budget, config.min_attempt_tokens)
    carried = dict(label_balance or {})
    sides = [_classify(g, config, skipped) for g in groups]
    items: list[Example] = []
    if TASK_POINTWISE in config.kinds or TASK_PAIRWISE in config.kinds:
        items += _judge_items(groups, sides, config, seed, skipped, carried, budget)
    if TASK_REFLECTION in config.kinds:
        items += _reflection_items(groups, sides, config, seed, skipped, budget)
    return items, _stats(groups, sides, items, skipped, carried, budget)
