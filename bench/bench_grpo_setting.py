"""Time plain-GRPO rounds of the tiny model under two values of one GRPOConfig setting.

The demo departs from two of TRL's defaults on the CPU, and this script measures what each
departure saves:
- `gradient_checkpointing` (TRL: on): a tiny model has memory to spare, and recomputing
  activations in the backward pass only costs time
  (`--setting gradient_checkpointing --values true false`);
- `bf16` (TRL: on): on the CPU, accelerate then runs every forward pass under bfloat16
  autocast, which a CPU without bfloat16 instructions emulates; `sparkrl train` turns it off
  for CPU runs that do not set it (`sparkrl.runs.precision_defaults`)
  (`--setting bf16 --values true false`).

Both values train the same briefly warm-started model, data, batch shape and seed as
`bench_training_step.py` (every completion exactly 48 tokens) for `--policy-steps` rounds,
the first value then the second, alternating over `--repeats` repeats so that machine load
affects both alike. The first round of each run (warm-up) is left out; rounds are timed per
generated token; each repeat gives one ratio (median of the second value / median of the
first), and the median and range of those ratios are printed.

    .venv/bin/python bench/bench_grpo_setting.py --setting bf16 --values true false [--repeats 3] [--policy-steps 6] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch
import yaml
from bench_training_step import TASK, warm_model
from bench_training_step import run_once as rounds_of

from sparkrl.data import examples_to_jsonl
from sparkrl.tiny.task import generate_examples


def run_once(folder: Path, policy_steps: int, seed: int, setting: str, value: object) -> list[float]:
    """Seconds per generated token of each plain-GRPO round after the first."""
    rounds = rounds_of("off", folder, policy_steps, seed, fixed_length=True, **{setting: value})
    return [seconds for _, seconds in rounds]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", required=True, help="a GRPOConfig field, e.g. bf16 or gradient_checkpointing")
    parser.add_argument("--values", nargs=2, required=True, metavar=("FIRST", "SECOND"),
                        help="the two values, read as YAML (true, false, numbers)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--policy-steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the demo gives each run one)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # Indexed, not keyed by value: YAML reads `1` and `true` as values Python counts equal.
    values = [yaml.safe_load(value) for value in args.values]
    names = [f"{args.setting}={value}" for value in args.values]
    ratios, times = [], [[], []]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        examples_to_jsonl(generate_examples(TASK, "train", 2000, seed=0), folder / "train.jsonl")
        warm_model(folder)
        for repeat in range(args.repeats):
            medians = []
            for index, value in enumerate(values):
                rounds = run_once(folder, args.policy_steps, repeat, args.setting, value)
                times[index] += rounds
                medians.append(statistics.median(rounds))
            ratios.append(medians[1] / medians[0])
            print(f"repeat {repeat + 1}/{args.repeats}: " + ", ".join(
                f"{name} {1000 * median:.3f}" for name, median in zip(names, medians)) + " ms per generated token", flush=True)
    for name, rounds in zip(names, times):
        print(f"{name}: {1000 * statistics.median(rounds):.3f} ms per generated token (median over rounds)")
    print(f"{names[1]} / {names[0]}: median {statistics.median(ratios):.3f}, "
          f"range {min(ratios):.3f}-{max(ratios):.3f} over {len(ratios)} repeats")


if __name__ == "__main__":
    main()
