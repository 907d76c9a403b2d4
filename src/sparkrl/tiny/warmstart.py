"""Supervised warm start of the tiny model: the task's solutions and the recycled formats.

Before RL the tiny model must already write solutions in the task's format and know what a
pointwise judge, a pairwise judge and a reflection response look like; otherwise no rollout
would ever earn a reward. It must not, however, already know how to judge: the demo's claim
is that judging is learnt by SPARK's RL. So in this data

- policy targets come from the imperfect teacher (`task.teacher_solution`, forgetting
  carries and, with `TaskConfig.false_carry`, writing carries that are not due), so greedy
  accuracy stays well below 100% and RL has room;
- every judge target is the teacher's own worked solution of the question, then the
  candidate answer(s) copied from the prompt (`vs 127`, `vs A: 125 B: 126`), then a verdict
  drawn at random, independent of whether any candidate is correct. The worked solution and
  the copied candidates put everything a judge needs side by side, so that it *can* learn to
  compare; the comparison itself is left to RL. (Without the copy, the tiny model did not
  tie its verdict vocabulary to the prompt: it answered Yes/No to pairwise prompts 43% of
  the time, and RL spent its steps on the format.)
  With `judge_style="notes"` each copied candidate is followed by a note of whether it is
  the same string as the worked answer (`A: 0!=1 B: 1==1`), with `judge_style="marks"` by one
  mark (`A: 0- B: 1+`, the last one right before the verdict); the verdict stays random and
  ignores notes and marks, so the comparison is written out but judging is still not taught;
- with `judge_style="follows"` (the demo's `digit` format) the verdict is instead the one the
  reply's own worked answer implies (`followed_verdict`), still never the truth: the judge
  teacher is careless (`TaskConfig.judge_slip`), so a verdict is right only as often as that
  teacher's answer, and a judge improves only by working more carefully. With random verdicts
  and ten possible answers, RL did not learn to make the verdict follow right marks
  (experiments/notes/digit-demo-2026-12.md);
- every reflection target is a fresh teacher solution, drawn without looking at the wrong
  attempt, so it is right or wrong exactly as often as a policy target;
- optional comparison drills (`WarmStartData.comparisons`): `Compare 4 and 5` answered with
  the mark a "checks" or "marks" reply writes (`4~5-`), on digits alone, with no question and
  no candidate from the task. With ten possible answers the model did not learn the marks from
  judge replies alone in 2,000 steps (the first mark at chance); the drills teach the
  comparison that the marks need. They say nothing about any verdict.

Prompts are rendered with the recycling templates (`sparkrl.templates`, tiny pool) and the
tokenizer's chat template, exactly as the RL trainer will render them.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from sparkrl.rows import TASK_PAIRWISE, TASK_POINTWISE, TASK_POLICY, TASK_REFLECTION
from sparkrl.templates import TemplateSet, pairwise_prompt, pointwise_prompt, reflection_prompt
from sparkrl.tiny.task import (
    Problem,
    TaskConfig,
    boxed_answer,
    direct_reply,
    generate_problems,
    split_capacity,
    teacher_solution,
    wrong_solution,
)
from sparkrl.tiny.templates import TINY_TEMPLATES


@dataclass(frozen=True)
class WarmStartData:
    """How many supervised pairs of each kind to build (from the train split)."""

    policy: int = 3000
    pointwise: int = 600
    pairwise: int = 600
    reflection: int = 600
    comparisons: int = 0

    def __post_init__(self) -> None:
        for name in ("policy", "pointwise", "pairwise", "reflection", "comparisons"):
            if getattr(self, name) < 0:
                raise ValueError(f"WarmStartData.{name} must be >= 0, got {getattr(self, name)}")
        if self.total == 0:
            raise ValueError("WarmStartData asks for no examples at all")

    @property
    def total(self) -> int:
        return self.policy + self.pointwise + self.pairwise + self.reflection + self.comparisons


@dataclass(frozen=True)
class WarmStartConfig:
    """The supervised loop; `steps` x `batch_size` pairs are seen (cycling through the data)."""

    steps: int = 1000
    batch_size: int = 32
    learning_rate: float = 3e-3
    warmup_steps: int = 30
    weight_decay: float = 0.01
    log_every: int = 50

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"WarmStartConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"WarmStartConfig.learning_rate must be > 0, got {self.learning_rate}")
        if self.warmup_steps < 0 or self.weight_decay < 0:
            raise ValueError("WarmStartConfig.warmup_steps and weight_decay must be >= 0")


@dataclass(frozen=True)
class SupervisedPair:
    """One warm-start example: the user message, the target reply, and what it is for.

    label: the verdict the target states (judge items) and correct: the verdict that would be
    right; kept so tests can show the two are independent. For policy and reflection pairs
    label is the target's answer and correct the ground truth.
    """

    prompt: str
    completion: str
    task: str
    label: str
    correct: str


JUDGE_STYLES = ("compare", "notes", "marks", "checks", "lookup", "picks", "follows")
# The `task` of a comparison drill (`comparison_pair`): not one of the recycled kinds.
TASK_COMPARISON = "comparison"


def judge_reply(solution: str, shown: str, verdict: str) -> str:
    """A judge's reply: its own worked solution, what it compares that with, its verdict."""
    return f"{solution} vs {shown} \\boxed{{{verdict}}}"


def equality_note(candidate: str, own: str) -> str:
    """`5==5` or `4!=5`: whether a candidate is the same string as the judge's own answer."""
    return f"{candidate}{'==' if candidate == own else '!='}{own}"


def noted_reply(solution: str, candidates: Sequence[tuple[str, str]], verdict: str) -> str:
    """A "notes" judge reply: the worked solution, each candidate noted as equal or not to the
    solution's own answer (`A: 4!=5 B: 5==5`; a pointwise candidate has no letter), the verdict."""
    own = boxed_answer(solution)
    return f"{solution} {_listed_candidates(candidates, lambda value: equality_note(value, own))} \\boxed{{{verdict}}}"


def agreement_mark(candidate: str, own: str) -> str:
    """`5+` or `4-`: whether a candidate is the same string as the judge's own answer."""
    return f"{candidate}{'+' if candidate == own else '-'}"


def marked_reply(solution: str, candidates: Sequence[tuple[str, str]], verdict: str) -> str:
    """A "marks" judge reply: like a "notes" reply, but each candidate is followed by one mark
    (`+` same as the solution's own answer, `-` not) and the last mark stands right before the
    verdict (`A: 4- B: 5+\\boxed{B}`), where a one-layer look-back can read it."""
    own = boxed_answer(solution)
    return f"{solution} {_listed_candidates(candidates, lambda value: agreement_mark(value, own))}\\boxed{{{verdict}}}"


def checked_mark(candidate: str, own: str) -> str:
    """`4~5-` or `5~5+`: a candidate, the judge's own answer beside it, and whether they are the
    same string; the two compared tokens stand right before the mark."""
    return f"{candidate}~{own}{'+' if candidate == own else '-'}"


def checked_reply(solution: str, candidates: Sequence[tuple[str, str]], verdict: str) -> str:
    """A "checks" judge reply: like a "marks" reply, but each candidate is followed by the
    judge's own answer before its mark (`A: 4~5- B: 5~5+\\boxed{B}`), so that every mark is a
    comparison of the two tokens just before it. With ten possible answers the warm-started
    model did not learn "marks" replies (both marks right on 42.7% of held-out replies, seed 0)."""
    own = boxed_answer(solution)
    return f"{solution} {_listed_candidates(candidates, lambda value: checked_mark(value, own))}\\boxed{{{verdict}}}"


def lookup_reply(solution: str, candidates: Sequence[tuple[str, str]], verdict: str) -> str:
    """A "lookup" judge reply: the worked solution, then which candidate is the same string as
    its own answer (pairwise: its letter, `-` when neither; pointwise: `+` or `-`), then the
    verdict (`... \\boxed{5} =A\\boxed{B}`). Finding the candidate that matches a token is what
    attention does by itself; comparing two digits in one position ("marks", "checks") is not,
    and the warm-started model did not learn it with ten possible answers (docs/demo.md)."""
    own = boxed_answer(solution)
    if len(candidates) == 1:
        found = "+" if candidates[0][1] == own else "-"
    else:
        found = next((letter for letter, value in candidates if value == own), "-")
    return f"{solution} ={found}\\boxed{{{verdict}}}"


def picked_reply(solution: str, candidates: Sequence[tuple[str, str]], verdict: str) -> str:
    """A "picks" judge reply: a "checks" reply, then one more mark, the *picked* one, and the
    verdict it implies (`A: 5~5+ B: 4~5- +\\boxed{A}`: pick the candidate marked `+`; `-` picks
    the one marked `-`; pointwise `5~5+ +\\boxed{Yes}`, Yes when the candidate's mark is the
    picked one). The verdict is still drawn at random; the picked mark is derived from it (the
    mark of the candidate it names; pointwise the candidate's mark for Yes, the other for No),
    so the pick is `+` or `-` half the time each, whatever is right. What the warm start
    teaches is how a pick turns into a verdict; which mark to pick (`+`: trust the comparison)
    is left to RL, one token that no context has to decide. Not used by the demo: greedy
    decoding already settles that one token for a model never rewarded for it, so the warm
    start judged 93.5% right (experiments/notes/digit-demo-2026-12.md, run 14)."""
    own = boxed_answer(solution)
    if len(candidates) == 1:
        mark = "+" if candidates[0][1] == own else "-"
        picked = mark if verdict in ("Yes", "A") else ("-" if mark == "+" else "+")
    else:
        named = dict(candidates)[verdict]
        picked = "+" if named == own else "-"
    checks = _listed_candidates(candidates, lambda value: checked_mark(value, own))
    return f"{solution} {checks} {picked}\\boxed{{{verdict}}}"


def followed_verdict(candidates: Sequence[tuple[str, str]], own: str, labels: Sequence[str], rng: random.Random) -> str:
    """The verdict a "follows" reply states: what its own answer says, never the truth.

    Pointwise: the first label (`Yes`) when the candidate is the judge's own answer, else the
    second. Pairwise: the letter of the candidate that is its own answer; a coin when neither
    is (the careless teacher's answer can match no candidate)."""
    if len(candidates) == 1:
        return labels[0] if candidates[0][1] == own else labels[1]
    matching = [letter for letter, value in candidates if value == own]
    return matching[0] if len(matching) == 1 else rng.choice(labels)


def _listed_candidates(candidates: Sequence[tuple[str, str]], show: Callable[[str], str] = str) -> str:
    """`A: x B: y` for lettered candidates, `x` for a pointwise one (empty letter)."""
    return " ".join(f"{letter}: {show(value)}" if letter else show(value) for letter, value in candidates)


def _verdict_pairs(
    task: str, prompt: str, candidates: Sequence[tuple[str, str]], problem: Problem, rng: random.Random,
    carry_slip: float, labels: Sequence[str], right: str, style: str, paired: bool, first_share: float = 0.5,
) -> list[SupervisedPair]:
    # The verdict is drawn on its own: neither `right` nor the notes of a "notes" reply are
    # consulted to choose it (the first label with chance `first_share`). Paired: the same
    # reply twice, once with each verdict.
    if paired:
        verdicts = list(labels)
    elif first_share == 0.5:
        verdicts = [rng.choice(labels)]
    else:
        verdicts = [labels[0] if rng.random() < first_share else labels[1]]
    solution = teacher_solution(problem, rng, carry_slip)
    if style == "follows":
        # The careless checker: the verdict its own worked answer implies (see the module doc).
        # The random draw above is kept: it holds the random stream, and so the shipped warm
        # start's data, the same as every other style's.
        verdicts = [followed_verdict(candidates, boxed_answer(solution), labels, rng)]

    def reply(verdict: str) -> str:
        if style == "notes":
            return noted_reply(solution, candidates, verdict)
        if style == "marks":
            return marked_reply(solution, candidates, verdict)
        if style in ("checks", "follows"):
            return checked_reply(solution, candidates, verdict)
        if style == "lookup":
            return lookup_reply(solution, candidates, verdict)
        if style == "picks":
            return picked_reply(solution, candidates, verdict)
        return judge_reply(solution, _listed_candidates(candidates), verdict)

    return [SupervisedPair(prompt, reply(verdict), task, verdict, right) for verdict in verdicts]


def pointwise_pairs(
    problem: Problem, rng: random.Random, carry_slip: float, templates: TemplateSet, letter_prob: float = 0.0,
    style: str = "compare", paired: bool = False, first_share: float = 0.5,
) -> list[SupervisedPair]:
    """A pointwise prompt and its reply (two replies, one per verdict, when `paired`);
    `letter_prob` of them use the option-letter variant (0 by default: the demo's recycling asks
    Yes/No only, and the tiny model keeps one verdict vocabulary per kind)."""
    is_right = rng.random() < 0.5
    candidate = problem.answer if is_right else boxed_answer(wrong_solution(problem, rng))
    letters = rng.random() < letter_prob
    prompt = pointwise_prompt(problem.question, candidate, rng, letters=letters, templates=templates)
    labels = ("A", "B") if letters else ("Yes", "No")
    right = labels[0] if is_right else labels[1]
    return _verdict_pairs(TASK_POINTWISE, prompt, [("", candidate)], problem, rng, carry_slip, labels, right, style, paired,
                          first_share)


def pairwise_pairs(
    problem: Problem, rng: random.Random, carry_slip: float, templates: TemplateSet, style: str = "compare",
    paired: bool = False, first_share: float = 0.5,
) -> list[SupervisedPair]:
    """A pairwise prompt and its reply (two replies, one per verdict, when `paired`)."""
    wrong = boxed_answer(wrong_solution(problem, rng))
    right = rng.choice(("A", "B"))
    a, b = (problem.answer, wrong) if right == "A" else (wrong, problem.answer)
    prompt = pairwise_prompt(problem.question, a, b, rng, templates=templates)
    return _verdict_pairs(TASK_PAIRWISE, prompt, [("A", a), ("B", b)], problem, rng, carry_slip, ("A", "B"), right,
                          style, paired, first_share)


def comparison_pair(rng: random.Random, style: str) -> SupervisedPair:
    """A comparison drill: two digits, equal half of the time, and the mark a `style` reply
    writes for them (`checks`: `4~5-`, `marks`: `4-` against the second digit)."""
    first = rng.randrange(10)
    second = first if rng.random() < 0.5 else rng.choice([d for d in range(10) if d != first])
    a, b = str(first), str(second)
    reply = agreement_mark(a, b) if style == "marks" else checked_mark(a, b)  # checks, picks, follows
    same = "+" if a == b else "-"
    return SupervisedPair(f"Compare {a} and {b}", reply, TASK_COMPARISON, same, same)


def reflection_pair(
    problem: Problem, rng: random.Random, carry_slip: float, templates: TemplateSet, direct: bool = False,
    false_carry: float = 0.0,
) -> SupervisedPair:
    """direct: attempts and targets are stated answers only (`TaskConfig.direct_answers`)."""
    attempt = wrong_solution(problem, rng)
    if direct:
        attempt = direct_reply(attempt)
    mode = rng.choice(("cot", "answer"))
    shown = attempt if mode == "cot" else boxed_answer(attempt)
    prompt = reflection_prompt(problem.question, shown, mode, rng, templates=templates)
    # Drawn independently of `attempt`: the warm start teaches the format, not the repair.
    target = teacher_solution(problem, rng, carry_slip, false_carry)
    if direct:
        target = direct_reply(target)
    return SupervisedPair(prompt, target, TASK_REFLECTION, boxed_answer(target), problem.answer)


def policy_pair(problem: Problem, rng: random.Random, carry_slip: float, suffix: str, direct: bool = False,
                false_carry: float = 0.0) -> SupervisedPair:
    """direct: the target is the teacher's stated answer only (`TaskConfig.direct_answers`)."""
    target = teacher_solution(problem, rng, carry_slip, false_carry)
    if direct:
        target = direct_reply(target)
    return SupervisedPair(problem.question + suffix, target, TASK_POLICY, boxed_answer(target), problem.answer)


def build_pairs(
    task: TaskConfig,
    data: WarmStartData,
    seed: int,
    *,
    policy_suffix: str = "",
    templates: TemplateSet = TINY_TEMPLATES,
    judge_style: str = "compare",
    paired_verdicts: bool = False,
    first_verdict_share: float = 0.5,
) -> list[SupervisedPair]:
    """The shuffled warm-start pairs, all from train-split problems.

    policy_suffix: appended to policy questions; pass the suffix the RL trainer will add.
    judge_style: how judge replies are written: "compare" (the candidates copied after the
    worked solution), "notes" (each candidate noted as equal or not to the worked answer,
    `A: 4!=5 B: 5==5`) or "marks" (the same as one mark each, `A: 4- B: 5+`); "checks",
    "lookup" and "picks" are the layouts of experiments/digit_demo.py. Verdicts are random in
    all of these; "follows" writes a "checks" reply whose verdict its own answer implies.
    paired_verdicts: every judge prompt is shown twice, with the same reply and each verdict
    once (as many judge pairs, from half as many prompts), so that within the data no verdict
    goes with any prompt, candidate, or note more often than another.
    first_verdict_share: how often a (not paired) judge reply's verdict is the first label (`Yes`,
    `A`), drawn independently of which is right. Above 0.5 the warm-started judge's greedy
    verdict is always the first label, which scores exactly 50% on balanced judge sets, while
    its samples still try the other label for RL to reward; at 0.5 the greedy verdict follows
    whatever tilt the random draws left, which a judge that reads a mark in one token can
    fit (`sparkrl.tiny.tokenizer.build_tokenizer(mark_tokens=True)`).
    """
    if not 0.0 < first_verdict_share < 1.0:
        raise ValueError(f"first_verdict_share must be strictly between 0 and 1, got {first_verdict_share}")
    if judge_style not in JUDGE_STYLES:
        raise ValueError(f"judge_style must be one of {JUDGE_STYLES}, got {judge_style!r}")
    if data.comparisons and judge_style not in ("marks", "checks", "picks", "follows"):
        raise ValueError(
            f"comparison drills go with judge_style 'marks', 'checks', 'picks' or 'follows', got {judge_style!r}")
    if judge_style == "follows" and (paired_verdicts or first_verdict_share != 0.5):
        raise ValueError("judge_style 'follows' derives each verdict from the reply: no paired or tilted verdicts")
    rng = random.Random(f"tiny-warmstart/{seed}")
    # Small task spaces (1-2 digits) hold fewer problems than the data asks for; reuse them.
    # Drills use no problem, so the problems (and every other pair) are the same with or without them.
    wanted = data.total - data.comparisons
    pool = generate_problems(task, "train", max(1, min(wanted, split_capacity(task, "train"))), seed)
    problems = itertools.cycle(pool)
    slip, direct = task.carry_slip, task.direct_answers
    judge_slip = slip if task.judge_slip is None else task.judge_slip
    false = task.false_carry
    pairs = [policy_pair(next(problems), rng, slip, policy_suffix, direct, false) for _ in range(data.policy)]
    per_prompt = 2 if paired_verdicts else 1
    for count, make in ((data.pointwise, pointwise_pairs), (data.pairwise, pairwise_pairs)):
        judged = [p for _ in range(math.ceil(count / per_prompt))
                  for p in make(next(problems), rng, judge_slip, templates, style=judge_style, paired=paired_verdicts,
                                first_share=first_verdict_share)]
        pairs += judged[:count]
    pairs += [reflection_pair(next(problems), rng, slip, templates, direct, false) for _ in range(data.reflection)]
    pairs += [comparison_pair(rng, judge_style) for _ in range(data.comparisons)]
    rng.shuffle(pairs)
    return pairs


def encode_pair(tokenizer: PreTrainedTokenizerBase, pair: SupervisedPair) -> tuple[list[int], int]:
    """Token ids of prompt (chat-rendered) + completion + eos, and where the completion starts."""
    messages = [{"role": "user", "content": pair.prompt}]
    prompt_ids = list(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"])
    completion_ids = tokenizer(pair.completion, add_special_tokens=False)["input_ids"]
    return prompt_ids + completion_ids + [tokenizer.eos_token_id], len(prompt_ids)


def collate(encoded: Sequence[tuple[list[int], int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch; labels are -100 on prompt and padding, so only replies are learnt."""
    width = max(len(ids) for ids, _ in encoded)
    input_ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(encoded), width), dtype=torch.long)
    labels = torch.full((len(encoded), width), -100, dtype=torch.long)
    for row, (ids, start) in enumerate(encoded):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention_mask[row, : len(ids)] = 1
        labels[row, start : len(ids)] = torch.tensor(ids[start:])
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


@dataclass(frozen=True)
class WarmStartReport:
    steps: int
    seconds: float
    first_loss: float
    final_loss: float


def warm_start(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    pairs: Sequence[SupervisedPair],
    config: WarmStartConfig,
    seed: int,
    progress: Callable[[str], None] | None = print,
) -> WarmStartReport:
    """Train `model` in place on `pairs` (AdamW, linear warm-up then cosine decay)."""
    encoded = [encode_pair(tokenizer, pair) for pair in pairs]
    return fit(model, encoded, [len(ids) for ids, _ in encoded], lambda rows: collate(rows, tokenizer.pad_token_id),
               config, seed, progress)


def fit(
    model: PreTrainedModel,
    encoded: Sequence[Any],
    lengths: Sequence[int],
    collate_rows: Callable[[list[Any]], dict[str, torch.Tensor]],
    config: WarmStartConfig,
    seed: int,
    progress: Callable[[str], None] | None = print,
    label: str = "warm start",
) -> WarmStartReport:
    """The supervised loop of every tiny warm start (text and image): batches of similar
    length (`length_bucketed_batches`), AdamW, linear warm-up then cosine decay to 10%,
    gradient clipping at 1; `collate_rows` turns a batch of `encoded` rows into model inputs
    with labels. Trains `model` in place and leaves it in eval mode."""
    if not encoded:
        raise ValueError(f"{label} needs at least one example")
    batches = length_bucketed_batches(lengths, config.batch_size, seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _lr_factor(step, config))
    model.train()
    started, losses = time.perf_counter(), []
    for step in range(1, config.steps + 1):
        loss = model(**collate_rows([encoded[i] for i in next(batches)])).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if progress and (step % config.log_every == 0 or step == config.steps):
            recent = losses[-config.log_every :]
            progress(f"{label} step {step}/{config.steps} loss {sum(recent) / len(recent):.3f} "
                     f"({time.perf_counter() - started:.0f}s)")
    model.eval()
    return WarmStartReport(config.steps, time.perf_counter() - started, losses[0], losses[-1])


def length_bucketed_batches(lengths: Sequence[int], batch_size: int, seed: int) -> Iterator[list[int]]:
    """Endless batches of indices, each epoch shuffled; rows of similar length share a batch.

    Judge prompts are several times longer than policy prompts, so mixing them freely would
    spend most of a batch on padding. Sorting within windows of 16 batches keeps each epoch
    random while cutting the padding.
    """
    rng = random.Random(f"tiny-warmstart-order/{seed}")
    window = 16 * batch_size
    while True:
        order = rng.sample(range(len(lengths)), len(lengths))
        batches = []
        for start in range(0, len(order), window):
            chunk = sorted(order[start : start + window], key=lengths.__getitem__)
            batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
        rng.shuffle(batches)
        yield from batches


def _lr_factor(step: int, config: WarmStartConfig) -> float:
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
