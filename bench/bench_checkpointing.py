"""Time plain-GRPO rounds of the tiny model with TRL's gradient checkpointing on and off.

TRL's `GRPOConfig` turns gradient checkpointing on by default; the demo turns it off
(`sparkrl.demo.workload.demo_grpo_settings`), since a tiny model has memory to spare and
recomputing activations in the backward pass only costs time. This script measures what
that saves: the same briefly warm-started model, data, batch shape and seed as
`bench_training_step.py` (every completion exactly 48 tokens), trained for
`--policy-steps` rounds with checkpointing on, then off, alternating over `--repeats`
repeats so that machine load affects both alike. The first round of each run (warm-up) is
left out; rounds are timed per generated token; each repeat gives one ratio (median off / on),
and the median and range of those ratios are printed.

    .venv/bin/python bench/bench_checkpointing.py [--repeats 3] [--policy-steps 6] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch
from bench_training_step import TASK, warm_model
from bench_training_step import run_once as rounds_of

from sparkrl.data import examples_to_jsonl
from sparkrl.tiny.task import generate_examples


def run_once(folder: Path, policy_steps: int, seed: int, checkpointing: bool) -> list[float]:
    """Seconds per generated token of each plain-GRPO round after the first."""
    rounds = rounds_of("off", folder, policy_steps, seed, fixed_length=True, gradient_checkpointing=checkpointing)
    return [seconds for _, seconds in rounds]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--policy-steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the demo gives each run one)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ratios, on_all, off_all = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        examples_to_jsonl(generate_examples(TASK, "train", 2000, seed=0), folder / "train.jsonl")
        warm_model(folder)
        for repeat in range(args.repeats):
            on = run_once(folder, args.policy_steps, repeat, checkpointing=True)
            off = run_once(folder, args.policy_steps, repeat, checkpointing=False)
            on_all += on
            off_all += off
            ratios.append(statistics.median(off) / statistics.median(on))
            print(f"repeat {repeat + 1}/{args.repeats}: on {1000 * statistics.median(on):.3f}, "
                  f"off {1000 * statistics.median(off):.3f} ms per generated token", flush=True)
    print(f"checkpointing on : {1000 * statistics.median(on_all):.3f} ms per generated token (median over rounds)")
    print(f"checkpointing off: {1000 * statistics.median(off_all):.3f} ms per generated token (median over rounds)")
    print(f"off / on: median {statistics.median(ratios):.3f}, range {min(ratios):.3f}-{max(ratios):.3f} "
          f"over {len(ratios)} repeats")


if __name__ == "__main__":
    main()
