"""Which prompts fill each generation round: dataset prompts, recycled items, or both.

A *round* is one generation batch of TRL's GRPOTrainer: a fixed number of prompt slots
(`generation_batch_size / num_generations`), each sampled `num_generations` times. This module
decides, round by round, how many slots go to recycled items and which dataset prompts fill
the rest. It is pure bookkeeping over plain records, so the same decisions are taken on every
process and can be saved in a checkpoint and restored exactly.

Schedules:
- `alternate` (the authors'): a round of dataset prompts, then, once at least a full round of
  recycled items is waiting, a round made only of recycled items.
- `mix`: every round gives `round(mix_share * slots)` slots to recycled items when any wait.
- `off`: plain GRPO; nothing is recycled.

Unlabeled prompts (`data.unlabeled`, rewarded by the model's own judgement) take
`unlabeled_slots(dataset slots, spark.unlabeled_share)` of a round's dataset slots, drawn from
their own file in a fresh seeded order on each pass (`unlabeled_indices`); the labelled prompts
they displace are deferred like those displaced by recycled items.

Departure from the authors: the batch shape never changes. Dataset prompts that a recycled
round displaces are not dropped but deferred, in order, to the next rounds, so recycling never
skips or starves the dataset; the deferred prompts are part of the checkpointed state.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sparkrl.errors import ConfigError

Schedule = Literal["alternate", "mix", "off"]
SCHEDULES: tuple[str, ...] = ("alternate", "mix", "off")


@dataclass(frozen=True)
class RoundPlan:
    """How one round's prompt slots are filled."""

    recycled: int  # slots given to recycled items
    dataset: int  # slots given to dataset prompts

    @property
    def is_policy_round(self) -> bool:
        """A round that trains on dataset prompts (what the policy-step budget counts)."""
        return self.dataset > 0


def plan_round(
    schedule: Schedule,
    slots: int,
    waiting: int,
    previous_was_recycled: bool,
    mix_share: float = 0.5,
) -> RoundPlan:
    """Decide the split of `slots` prompt slots given `waiting` recycled items in the pool."""
    if slots < 1:
        raise ValueError(f"a round needs at least one prompt slot, got {slots}")
    if schedule == "off" or waiting == 0:
        return RoundPlan(recycled=0, dataset=slots)
    if schedule == "alternate":
        if waiting >= slots and not previous_was_recycled:
            return RoundPlan(recycled=slots, dataset=0)
        return RoundPlan(recycled=0, dataset=slots)
    if schedule == "mix":
        wanted = mix_slots(slots, mix_share)
        taken = min(wanted, waiting)
        return RoundPlan(recycled=taken, dataset=slots - taken)
    raise ValueError(f"unknown schedule {schedule!r}; expected one of {SCHEDULES}")


def round_budget(schedule: Schedule | str, policy_steps: int) -> int:
    """The most rounds a run with this policy-step budget can take: under `alternate` each
    policy round may be followed by a recycled one; under `mix` and `off` every round trains on
    dataset prompts."""
    return policy_steps * (2 if schedule == "alternate" else 1)


def optimizer_steps_per_round(grpo_args: Any) -> int:
    """Optimizer steps that one generation round is trained for (from TRL's GRPOConfig)."""
    micro_steps = grpo_args.steps_per_generation * grpo_args.num_iterations
    if micro_steps % grpo_args.gradient_accumulation_steps:
        raise ConfigError(
            "grpo.steps_per_generation x grpo.num_iterations must be a multiple of "
            f"grpo.gradient_accumulation_steps (got {grpo_args.steps_per_generation} x "
            f"{grpo_args.num_iterations} and {grpo_args.gradient_accumulation_steps})"
        )
    return micro_steps // grpo_args.gradient_accumulation_steps


def mix_slots(slots: int, share: float) -> int:
    """Recycled slots per round in `mix`: the share, rounded, but always leaving one dataset slot."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"mix_share must be strictly between 0 and 1, got {share}")
    return max(1, min(slots - 1, round(share * slots))) if slots > 1 else 0


def unlabeled_slots(dataset_slots: int, share: float) -> int:
    """Dataset slots of a round given to unlabeled prompts: the share, rounded half up."""
    return min(dataset_slots, int(share * dataset_slots + 0.5))


def unlabeled_indices(taken: int, count: int, size: int, seed: int) -> list[int]:
    """Rows of the unlabeled file (of `size` rows) for the next `count` slots, `taken` having
    been used before: each pass over the file in its own seeded order."""
    if size < 1:
        raise ValueError("the unlabeled data holds no rows")
    orders: dict[int, list[int]] = {}
    picked = []
    for position in range(taken, taken + count):
        order = orders.get(position // size)
        if order is None:
            order = list(range(size))
            random.Random(f"{seed}:unlabeled:{position // size}").shuffle(order)
            orders[position // size] = order
        picked.append(order[position % size])
    return picked


@dataclass
class RoundState:
    """Everything the schedule carries from round to round (saved in checkpoints).

    pool: recycled items waiting to be trained on, oldest first (JSON records of `Example`).
    deferred: dataset prompts displaced by recycled items, oldest first (row dicts).
    label_balance: the pointwise label balance of every item recycled so far
        (`sparkrl.recycling.recycle`), so that it holds over the whole run.
    unlabeled_taken: unlabeled prompts trained so far (where the next ones start).
    """

    pool: deque[dict[str, Any]] = field(default_factory=deque)
    deferred: deque[dict[str, Any]] = field(default_factory=deque)
    rounds: int = 0
    policy_rounds: int = 0
    recycled_rounds: int = 0
    previous_was_recycled: bool = False
    items_built: int = 0
    items_trained: int = 0
    items_dropped: int = 0
    label_balance: dict[str, int] = field(default_factory=dict)
    unlabeled_taken: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "pool": list(self.pool),
            "deferred": list(self.deferred),
            "rounds": self.rounds,
            "policy_rounds": self.policy_rounds,
            "recycled_rounds": self.recycled_rounds,
            "previous_was_recycled": self.previous_was_recycled,
            "items_built": self.items_built,
            "items_trained": self.items_trained,
            "items_dropped": self.items_dropped,
            "label_balance": dict(self.label_balance),
            "unlabeled_taken": self.unlabeled_taken,
        }

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> RoundState:
        state = cls(pool=deque(record["pool"]), deferred=deque(record["deferred"]))
        for name in (
            "rounds",
            "policy_rounds",
            "recycled_rounds",
            "items_built",
            "items_trained",
            "items_dropped",
        ):
            setattr(state, name, int(record[name]))
        state.previous_was_recycled = bool(record["previous_was_recycled"])
        # Checkpoints written before the balance was carried start from an even balance.
        state.label_balance = {str(k): int(v) for k, v in record.get("label_balance", {}).items()}
        state.unlabeled_taken = int(record.get("unlabeled_taken", 0))
        return state

    def add_items(self, items: Iterable[dict[str, Any]], capacity: int | None) -> None:
        """Append newly recycled items; beyond `capacity` the oldest are dropped (and counted)."""
        for item in items:
            self.pool.append(item)
            self.items_built += 1
        if capacity is not None:
            while len(self.pool) > capacity:
                self.pool.popleft()
                self.items_dropped += 1


def fill_round(
    state: RoundState, plan: RoundPlan, incoming: Sequence[dict[str, Any]], unlabeled: int = 0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Take this round's prompts; returns (recycled items, dataset prompts), each oldest first.

    `incoming` are the dataset prompts the data loader delivered for this round (one per slot).
    Deferred prompts go first, so the dataset is consumed in loader order; what is not used
    this round is deferred. `unlabeled` of the dataset slots are left to the caller, for
    unlabeled prompts (counted in `unlabeled_taken`). Mutates `state`.
    """
    if plan.recycled > len(state.pool):
        raise ValueError(f"plan asks for {plan.recycled} recycled items, only {len(state.pool)} wait")
    if not 0 <= unlabeled <= plan.dataset:
        raise ValueError(f"{unlabeled} unlabeled slots do not fit the round's {plan.dataset} dataset slots")
    recycled = [state.pool.popleft() for _ in range(plan.recycled)]
    state.deferred.extend(incoming)
    dataset = [state.deferred.popleft() for _ in range(plan.dataset - unlabeled)]
    state.unlabeled_taken += unlabeled
    state.rounds += 1
    state.items_trained += len(recycled)
    state.policy_rounds += int(plan.is_policy_round)
    state.recycled_rounds += int(not plan.is_policy_round)
    state.previous_was_recycled = not plan.is_policy_round
    return recycled, dataset
