"""Time `recycle` on one training batch of synthetic groups (default 64 prompts x 8 rollouts).

Rollouts carry ~2,000 characters of text, a final answer and a 0/1 reward, with a mix of
all-correct, all-wrong and mixed groups and some answers missing. Prints the median and the
range of the wall time over several runs (answer extraction is not included: that is the
verifier's cost, paid for the reward anyway).

    .venv/bin/python bench/bench_recycling.py [--groups 64] [--size 8] [--runs 21]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from sparkrl.recycling import Group, RecyclingConfig, Rollout, recycle


def synthetic_groups(n_groups: int, size: int, seed: int) -> list[Group]:
    rng = random.Random(seed)
    filler = "We compute the intermediate quantity step by step and check each value. " * 28
    groups = []
    for g in range(n_groups):
        p_correct = rng.choice([0.0, 0.3, 0.7, 1.0])
        rollouts = []
        for i in range(size):
            correct = rng.random() < p_correct
            answer = str(g) if correct else (None if rng.random() < 0.1 else str(g + i + 1))
            text = filler + (f"\\boxed{{{answer}}}" if answer else "(truncated)")
            rollouts.append(Rollout(text, 1.0 if correct else 0.0, answer))
        groups.append(Group(f"Problem {g}: find the value. " * 4, str(g), tuple(rollouts)))
    return groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=64)
    parser.add_argument("--size", type=int, default=8)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    groups = synthetic_groups(args.groups, args.size, seed=0)
    config = RecyclingConfig()
    times_ms = []
    for run in range(args.runs):
        start = time.perf_counter()
        items, _ = recycle(groups, config, seed=run)
        times_ms.append((time.perf_counter() - start) * 1000)
    print(
        f"recycle: {args.groups} groups x {args.size} rollouts -> {len(items)} items; "
        f"median {statistics.median(times_ms):.2f} ms over {args.runs} runs "
        f"(min {min(times_ms):.2f}, max {max(times_ms):.2f})"
    )


if __name__ == "__main__":
    main()
