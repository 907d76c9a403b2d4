"""Self-judged rewards: the model being trained scores the rollouts of prompts without an answer.

A dataset row without a ground truth (task `open`) cannot be verified. SPARK trains the policy
to be its own generative judge, so the same model can score such rollouts instead, in one of
three modes (`spark.self_reward.mode`):

- `pointwise`: each rollout's reward is the judge's P(`Yes`) for a pointwise prompt showing
  it (renormalised over `Yes`/`No` at the verdict token, as `verdict_probability` reads it at
  evaluation; the share of `Yes` among sampled verdicts where no probability can be read).
- `pairwise`: rollouts of a group are compared with each other, each pair in both orders
  (so a judge that always answers `A` gives every rollout 0.5); a rollout's reward is its
  win rate, the mean of P(it is the better one) over its comparisons. All pairs are compared
  when a group has at most `max_pairs` of them, else `max_pairs` drawn at random (seeded).
- `majority` (a test-time-RL baseline for prompts with extractable final answers): 1 for a
  rollout whose final answer is the group's most frequent one, 0 otherwise; no judge call.

This module is pure: the model is reached only through a `Judge` (prompts in, verdict
probabilities out), so every rule here is tested with a scripted judge. The trainer's judge
(the live model, through its own generation path) is `sparkrl.live_judge.LiveJudge`.
Monitoring compares self-judged scores with the verifier on labelled rollouts
(`agreement`, `mean_spearman`), and `SelfRewardState` carries the agreement history and the
`min_agreement` gate between rounds (checkpointed by the trainer).

Choices of ours (the paper trains the judge but never rewards unlabeled data with it):
- Judges see what they were trained on: by default only a rollout's final answer
  (`show: answer`, as recycled judge items show), or the whole response (`show: response`).
  A rollout with nothing to show scores 0 (pointwise, pairwise, majority alike).
- Prompts use the first template of the run's pools (as evaluation does), never a random one:
  rollouts showing the same candidate then get the same prompt, hence the same reward, and
  identical prompts of a round are judged once.
- Pairs showing the same candidate (final answers equal after `normalize_answer`) are not
  compared (a tie carries no preference, only the judge's position bias). A rollout in no
  compared pair gets 0.5, so a group whose candidates all agree has no advantage.
- Majority ties: every answer with the top count scores 1.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from sparkrl.errors import ConfigError
from sparkrl.templates import TemplateSet, pairwise_prompt, pointwise_prompt
from sparkrl.verification import extract_final_answer, normalize_answer

SELF_REWARD_MODES: tuple[str, ...] = ("pointwise", "pairwise", "majority")
YES_NO = ("Yes", "No")
LETTERS = ("A", "B")
THRESHOLD = 0.5  # a self-judged score at or above it counts as "correct" when compared with the verifier
NEUTRAL = 0.5  # the win rate of a rollout that was compared with none


@dataclass(frozen=True)
class SelfRewardConfig:
    """`spark.self_reward`: how unlabeled rows are rewarded and how the judge is watched.

    mode: `pointwise`, `pairwise` or `majority` (see the module docstring).
    show: what a judge prompt shows of a rollout: its final `answer` or the whole `response`.
    max_new_tokens: the judge's length limit per verdict (None: `grpo.max_completion_length`,
        the budget its judge items were trained with).
    samples: sampled verdicts per prompt where the greedy verdict gives no probability.
    temperature: of those sampled verdicts.
    max_pairs: pairwise: most pairs compared per group (each in both orders).
    monitor_every: score the labelled rollouts of every n-th round that has any with the
        self-judged reward too, and log its agreement with the verifier.
    min_agreement: None: self-judged rewards from the start. A share in [0, 1]: unlabeled rows
        get reward 0 (no advantage) until a monitored round's agreement reaches it; from then
        on they get their self-judged rewards.
    """

    mode: Literal["pointwise", "pairwise", "majority"] = "pointwise"
    show: Literal["answer", "response"] = "answer"
    max_new_tokens: int | None = None
    samples: int = 4
    temperature: float = 1.0
    max_pairs: int = 8
    monitor_every: int = 1
    min_agreement: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in SELF_REWARD_MODES:
            raise ConfigError(f"mode must be one of {SELF_REWARD_MODES}, got {self.mode!r}")
        if self.show not in ("answer", "response"):
            raise ConfigError(f"show must be 'answer' or 'response', got {self.show!r}")
        for name in ("samples", "max_pairs", "monitor_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be at least 1 or null, got {self.max_new_tokens}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ConfigError(f"temperature must be a positive number, got {self.temperature}")
        if self.min_agreement is not None and not 0.0 <= self.min_agreement <= 1.0:
            raise ConfigError(f"min_agreement must be in [0, 1] or null, got {self.min_agreement}")


# --------------------------------------------------------------------------- the judge


@dataclass(frozen=True)
class JudgePrompt:
    """One question to the judge: its user text, the images it shows, its two verdicts (the
    probability asked for is that of `options[0]`)."""

    text: str
    options: tuple[str, str] = YES_NO
    images: tuple[str, ...] = ()


@dataclass(frozen=True)
class JudgeOutput:
    """P(options[0]) per prompt, in order, and the tokens the judge generated for them."""

    probabilities: tuple[float, ...]
    generated_tokens: int = 0


class Judge(Protocol):
    def __call__(self, prompts: Sequence[JudgePrompt]) -> JudgeOutput: ...


@dataclass(frozen=True)
class RolloutGroup:
    """One prompt's rollouts, as the judge is shown them."""

    question: str
    responses: tuple[str, ...]
    images: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroupScores:
    """Self-judged rewards per group and rollout, and what they cost."""

    rewards: tuple[tuple[float, ...], ...]
    judge_calls: int  # distinct prompts the judge answered
    generated_tokens: int


def candidate(response: str, show: str) -> str | None:
    """What a judge prompt shows of a response: its final answer, or the whole (stripped) text."""
    if show == "answer":
        return extract_final_answer(response)
    return response.strip() or None


def _candidate_key(shown: str, show: str) -> str:
    return normalize_answer(shown) if show == "answer" else shown


def select_pairs(keys: Sequence[str | None], max_pairs: int, rng: random.Random) -> list[tuple[int, int]]:
    """Pairs (i < j) of rollouts to compare: every pair of shown candidates that differ (a None
    key is a rollout with nothing to show) when there are at most `max_pairs`, else `max_pairs`
    of them drawn with `rng`, in order."""
    usable = [i for i, key in enumerate(keys) if key is not None]
    pairs = [(i, j) for a, i in enumerate(usable) for j in usable[a + 1 :] if keys[i] != keys[j]]
    return pairs if len(pairs) <= max_pairs else sorted(rng.sample(pairs, max_pairs))


def win_rates(n: int, comparisons: Sequence[tuple[int, int, float]]) -> list[float | None]:
    """Each rollout's mean chance of winning its comparisons; None for one never compared.
    A comparison (a, b, p) showed rollout a as (A) and b as (B), with P(A) = p."""
    won = [0.0] * n
    played = [0] * n
    for a, b, p in comparisons:
        won[a] += p
        won[b] += 1.0 - p
        played[a] += 1
        played[b] += 1
    return [won[i] / played[i] if played[i] else None for i in range(n)]


def majority_rewards(answers: Sequence[str | None]) -> list[float]:
    """1 for each answer with the group's top count (after `normalize_answer`), else 0; 0
    for a rollout without an answer."""
    keys = [normalize_answer(a) if a else None for a in answers]
    counts = Counter(key for key in keys if key)
    if not counts:
        return [0.0] * len(answers)
    top = max(counts.values())
    return [1.0 if key and counts[key] == top else 0.0 for key in keys]


class _Requests:
    """The round's judge prompts, each distinct prompt once."""

    def __init__(self) -> None:
        self.index: dict[JudgePrompt, int] = {}

    def add(self, prompt: JudgePrompt) -> int:
        return self.index.setdefault(prompt, len(self.index))

    def ask(self, judge: Judge) -> JudgeOutput:
        prompts = list(self.index)
        if not prompts:
            return JudgeOutput(())
        output = judge(prompts)
        if len(output.probabilities) != len(prompts):
            raise RuntimeError(f"the judge answered {len(output.probabilities)} of {len(prompts)} prompts")
        return output


def score_groups(
    groups: Sequence[RolloutGroup], config: SelfRewardConfig, judge: Judge, templates: TemplateSet, seed: int
) -> GroupScores:
    """Every rollout's self-judged reward in [0, 1], all groups' prompts in one judge call."""
    if config.mode == "majority":
        rewards = [majority_rewards([extract_final_answer(r) for r in g.responses]) for g in groups]
        return GroupScores(tuple(map(tuple, rewards)), 0, 0)
    requests = _Requests()
    shown = [[candidate(r, config.show) for r in g.responses] for g in groups]
    if config.mode == "pointwise":
        asked = [[None if c is None else requests.add(_pointwise(g, c, templates)) for c in cands]
                 for g, cands in zip(groups, shown)]
        output = requests.ask(judge)
        rewards = [[0.0 if k is None else output.probabilities[k] for k in row] for row in asked]
    else:
        planned = [_plan_pairs(g, cands, config, templates, random.Random(f"{seed}:pairs:{index}"), requests)
                   for index, (g, cands) in enumerate(zip(groups, shown))]
        output = requests.ask(judge)
        rewards = []
        for cands, comparisons in zip(shown, planned):
            rates = win_rates(len(cands), [(a, b, output.probabilities[k]) for a, b, k in comparisons])
            rewards.append([0.0 if c is None else NEUTRAL if rate is None else rate for c, rate in zip(cands, rates)])
    return GroupScores(tuple(map(tuple, rewards)), len(requests.index), output.generated_tokens)


def _pointwise(group: RolloutGroup, shown: str, templates: TemplateSet) -> JudgePrompt:
    return JudgePrompt(pointwise_prompt(group.question, shown, templates=templates), YES_NO, group.images)


def _plan_pairs(
    group: RolloutGroup, shown: Sequence[str | None], config: SelfRewardConfig, templates: TemplateSet,
    rng: random.Random, requests: _Requests,
) -> list[tuple[int, int, int]]:
    """(rollout shown as A, rollout shown as B, request index) for both orders of each pair."""
    keys = [None if c is None else _candidate_key(c, config.show) for c in shown]
    comparisons = []
    for i, j in select_pairs(keys, config.max_pairs, rng):
        for a, b in ((i, j), (j, i)):
            text = pairwise_prompt(group.question, str(shown[a]), str(shown[b]), templates=templates)
            comparisons.append((a, b, requests.add(JudgePrompt(text, LETTERS, group.images))))
    return comparisons


# --------------------------------------------------------------------------- monitoring


def agreement(scores: Sequence[float], labels: Sequence[float]) -> float:
    """The share of rollouts whose thresholded self-judged score (>= 0.5) matches the
    verifier's 0/1 verdict."""
    if len(scores) != len(labels) or not scores:
        raise ValueError(f"agreement needs as many scores as labels, at least one (got {len(scores)}, {len(labels)})")
    return sum((s >= THRESHOLD) == (label >= THRESHOLD) for s, label in zip(scores, labels)) / len(scores)


def _ranks(values: Sequence[float]) -> list[float]:
    """Ranks from 1, ties given their average rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for k in range(start, end + 1):
            ranks[order[k]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation (Pearson's on average ranks); None when either side is
    constant (a group whose rollouts the verifier, or the judge, scored alike)."""
    if len(x) != len(y):
        raise ValueError(f"spearman needs sequences of one length, got {len(x)} and {len(y)}")
    rx, ry = _ranks(x), _ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx, syy = sum((a - mx) ** 2 for a in rx), sum((b - my) ** 2 for b in ry)
    return None if sxx == 0 or syy == 0 else sxy / math.sqrt(sxx * syy)


def mean_spearman(groups: Sequence[tuple[Sequence[float], Sequence[float]]]) -> float | None:
    """The mean Spearman correlation of (scores, labels) over the groups where it is defined."""
    values = [rho for scores, labels in groups if (rho := spearman(scores, labels)) is not None]
    return sum(values) / len(values) if values else None


@dataclass
class SelfRewardState:
    """What the self-judged reward carries from round to round (saved in checkpoints).

    active: whether unlabeled rows get their self-judged rewards (False until the
        `min_agreement` gate opens; it stays open).
    labelled_rounds: rounds with labelled rollouts so far (every `monitor_every`-th is monitored).
    history: one record per monitored round: round, agreement, spearman (None: no group had
        both right and wrong rollouts and varied scores), rollouts compared.
    """

    active: bool = True
    labelled_rounds: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def initial(cls, config: SelfRewardConfig) -> SelfRewardState:
        return cls(active=config.min_agreement is None)

    def next_round(self, config: SelfRewardConfig, has_labelled: bool) -> bool:
        """Count a round; whether its labelled rollouts are scored for monitoring."""
        if not has_labelled:
            return False
        self.labelled_rounds += 1
        return (self.labelled_rounds - 1) % config.monitor_every == 0

    def record(
        self, config: SelfRewardConfig, round_index: int, probe: Sequence[tuple[Sequence[float], Sequence[float]]]
    ) -> dict[str, Any]:
        """Log one monitored round: per group (self-judged scores, verifier's 0/1); opens the
        gate when the agreement reaches `min_agreement`. Returns the history record."""
        scores = [s for group, _ in probe for s in group]
        labels = [label for _, group in probe for label in group]
        entry = {"round": round_index, "agreement": agreement(scores, labels), "spearman": mean_spearman(probe),
                 "rollouts": len(scores)}
        self.history.append(entry)
        if not self.active and config.min_agreement is not None and entry["agreement"] >= config.min_agreement:
            self.active = True
        return entry

    def to_dict(self) -> dict[str, Any]:
        return {"active": self.active, "labelled_rounds": self.labelled_rounds, "history": list(self.history)}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> SelfRewardState:
        return cls(bool(record["active"]), int(record["labelled_rounds"]), [dict(e) for e in record["history"]])
