"""What a training round's logs say beyond TRL's: where its time went, and whether its rewards
carried any learning signal.

Time: `PhaseClock` adds up the seconds spent in each phase of training (generation, scoring,
self-judged scoring, the rest of TRL's round preparation, sparkrl's recycling, optimizer
steps) between two log lines, beside the wall time between them, so the phases' shares are
read off directly.

Signal: GRPO learns from the differences between the rewards of a group. A group whose
rollouts all scored alike has advantages of zero and moves nothing; when every group of a round
is like that, loss and gradient norm are exactly zero. TRL logs the share of such groups over a
whole batch (`frac_reward_zero_std`); `no_signal_groups` splits it by kind of prompt (policy or
recycled), and `SignalWatch` decides when that deserves a warning a user will see early (the
first such round, then again only when the share changes class or after a number of rounds),
with a hint at the likely cause from the verdicts of that kind's rollouts.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from sparkrl.rows import TASK_OPEN, TASK_POLICY

# |advantage| below this counts as zero: TRL divides r - mean by (std + 1e-4), so all-equal
# rewards leave float noise around 1e-12, and real differences stay far above.
ZERO_ADVANTAGE = 1e-6
KIND_POLICY, KIND_RECYCLED, KIND_OPEN = "policy", "recycled", "open"


class PhaseClock:
    """Seconds per phase since the last `take`, and the wall-clock seconds since then."""

    def __init__(self, now: Callable[[], float] = time.perf_counter) -> None:
        self._now = now
        self._since = now()
        self._spent: Counter[str] = Counter()

    def restart(self) -> None:
        """Forget what was measured (e.g. at the start of training, after set-up)."""
        self._since, self._spent = self._now(), Counter()

    def add(self, phase: str, seconds: float) -> None:
        self._spent[phase] += seconds

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        start = self._now()
        try:
            yield
        finally:
            self.add(phase, self._now() - start)

    def take(self) -> dict[str, float]:
        """{phase: seconds} and "interval": the wall time they fell in; then starts afresh."""
        now = self._now()
        spent = {**self._spent, "interval": now - self._since}
        self._since, self._spent = now, Counter()
        return spent


def prompt_kind(task: str) -> str:
    """"policy" for dataset prompts, "open" for unlabeled ones (self-judged rewards),
    "recycled" for judge and reflection items."""
    if task == TASK_OPEN:
        return KIND_OPEN
    return KIND_POLICY if task == TASK_POLICY else KIND_RECYCLED


def no_signal_groups(advantages: Sequence[float], tasks: Sequence[str], group_size: int) -> dict[str, tuple[int, int]]:
    """Per kind of prompt present in the round, (groups whose advantages are all zero, groups).
    `advantages` and `tasks` are per row, a group being `group_size` consecutive rows."""
    if len(advantages) != len(tasks) or len(tasks) % group_size:
        raise ValueError(f"{len(advantages)} advantages and {len(tasks)} rows do not form groups of {group_size}")
    flat: Counter[str] = Counter()
    groups: Counter[str] = Counter()
    for start in range(0, len(tasks), group_size):
        kind = prompt_kind(tasks[start])
        groups[kind] += 1
        flat[kind] += int(all(abs(a) < ZERO_ADVANTAGE for a in advantages[start : start + group_size]))
    return {kind: (flat[kind], n) for kind, n in sorted(groups.items())}


def mean_per_key(records: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Each key's mean over the records that have it (absent when none has)."""
    keys = sorted({key for record in records for key in record})
    return {key: sum(r[key] for r in records if key in r) / sum(key in r for r in records) for key in keys}


def share_class(share: float) -> str:
    """Coarse classes of a no-signal share, so that a warning repeats when the class changes
    rather than whenever the share moves: "all", "most" (at least half) or "some"."""
    if share >= 1.0:
        return "all"
    return "most" if share >= 0.5 else "some"


@dataclass
class SignalWatch:
    """When to warn about groups without signal, per kind: on the first round where at least
    half of that kind's groups have none, then when the class changes ("most" to "all" or back
    after "some"), and otherwise at most once every `every` rounds."""

    every: int = 20
    last_warned: dict[str, int] = field(default_factory=dict)
    previous: dict[str, str] = field(default_factory=dict)

    def should_warn(self, kind: str, share: float, round_index: int) -> bool:
        level, before = share_class(share), self.previous.get(kind)
        self.previous[kind] = level
        if level == "some":
            return False
        last = self.last_warned.get(kind)
        if last is not None and level == before and round_index - last < self.every:
            return False
        self.last_warned[kind] = round_index
        return True


def no_signal_warning(
    kind: str, flat: int, groups: int, round_index: int, rewards: Sequence[float], no_answer: int
) -> str:
    """The one-line warning: how many groups, what that means, the verdicts' numbers and a hint.
    `rewards` are the verifier scores of that kind's rollouts; `no_answer` how many of them had
    no extractable final answer."""
    head = (
        f"[sparkrl] round {round_index}: {flat} of {groups} {kind} groups ({flat / groups:.0%}) have "
        "all-equal rewards, so they carry no learning signal (zero advantages; with only such groups "
        "loss and grad_norm are 0)."
    )
    if not rewards:
        return head
    mean = sum(rewards) / len(rewards)
    facts = f" Mean reward {mean:.3f} over {len(rewards)} rollouts; {no_answer} had no extractable answer."
    all_same = max(rewards) <= min(rewards)
    if kind == KIND_OPEN:
        hint = (" Hint: the self-judged rewards of these unlabeled groups do not differ: they are 0 while the "
                "spark.self_reward.min_agreement gate is shut (see spark/self_reward_active), or the judge scores "
                "a group's rollouts alike (see spark/self_reward_agreement).")
    elif kind == KIND_RECYCLED and all_same and mean <= 0:
        hint = (" Hint: every recycled rollout failed; judge and reflection items are built from the policy's "
                "rollouts (a reflection item asks the policy's question again), so they inherit a task that is "
                "too hard.")
    elif kind == KIND_RECYCLED and all_same:
        hint = (" Hint: every recycled rollout was right; these judge and reflection items are already easy "
                "for this model, so they teach it little.")
    elif kind == KIND_RECYCLED:
        hint = (" Hint: recycled groups agree within themselves; more grpo.num_generations or a higher "
                "temperature can split them.")
    elif no_answer * 2 >= len(rewards):
        hint = (" Hint: check the answer format (the verifier reads the last \\boxed{}; see prompt.suffix) "
                "and whether grpo.max_completion_length cuts answers off.")
    elif all_same and mean <= 0:
        hint = " Hint: every rollout failed; the task may be too hard for this model (easier data, a stronger model)."
    elif all_same:
        hint = " Hint: every rollout scored the same; the task may be too easy, or the reward constant."
    else:
        hint = (" Hint: groups agree within themselves; more grpo.num_generations or a higher temperature "
                "can split them.")
    return head + facts + hint


def round_times(spent: Mapping[str, float]) -> dict[str, float]:
    """The logged phases from what the trainer's clock measured ("generation", "scoring",
    "self_reward": self-judged scoring, which runs inside scoring, "trl_round": all of TRL's
    round preparation, "recycling": sparkrl's round work, "steps": whole optimizer steps,
    "interval"). A round is prepared inside the optimizer step that needs it, so the
    optimizer's own time is the steps' time less the round work they held. "self_reward" is
    reported only when it was measured (runs with spark.self_reward)."""
    generation, scoring = spent.get("generation", 0.0), spent.get("scoring", 0.0)
    trl_round, recycling = spent.get("trl_round", 0.0), spent.get("recycling", 0.0)
    self_reward = spent.get("self_reward", 0.0)
    times = {
        "generation": generation,
        "scoring": max(0.0, scoring - self_reward),
        "preparation": max(0.0, trl_round - generation - scoring),
        "recycling": recycling,
        "optimizer": max(0.0, spent.get("steps", 0.0) - trl_round - recycling),
        "interval": spent.get("interval", 0.0),
    }
    if "self_reward" in spent:
        times["self_reward"] = self_reward
    return times
