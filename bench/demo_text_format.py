"""The demo's pipeline on the one-token, fixed-distance text format: does SPARK's judge learn then?

A diagnostic beside `bench/probe_judge_learning.py`, not the demo. It runs `sparkrl demo`'s
pipeline (same warm-start data and steps, plain GRPO and SPARK from one warm start, held-out
evaluation, report) on the text task with

- `asked="tens"`: the answer is the tens digit of the sum, one token;
- `explicit_carries`: every solution of the task has the same length;
- the `tiny-fixed` templates: candidates on one line right before the question;
- pairwise-rich recycling (every mixed group gives a pairwise item, one judge item per group),
  as in the image demo,

so that a judge finds its own answer and the candidates at fixed distances from its verdict.

    python bench/demo_text_format.py --out runs/format-tens --seed 0 [--rl-steps 40] [--size small]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from sparkrl.demo.pipeline import DemoConfig, run_demo
from sparkrl.demo.workload import PAIRWISE_RICH_RECYCLING, TextWorkload, Workload

@dataclass(frozen=True)
class FixedFormatDemo(DemoConfig):
    rl_steps: int = 40
    size: str = "micro"

    def workload(self) -> Workload:
        return TextWorkload(size=self.size, asked="tens", explicit_carries=True, templates="tiny-fixed",
                            rl_steps=self.rl_steps, recycling=PAIRWISE_RICH_RECYCLING)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rl-steps", type=int, default=40, help="policy steps of each RL run")
    parser.add_argument("--size", choices=("nano", "micro", "small"), default="micro", help="tiny model size")
    args = parser.parse_args()
    config = FixedFormatDemo(out=args.out, seed=args.seed, rl_steps=args.rl_steps, size=args.size)
    summary = run_demo(config)
    for name in ("warmstart", "grpo", "spark"):
        print(name, json.dumps({k: round(v, 3) for k, v in summary[name].items() if isinstance(v, float)}))
    print(f"wall {summary['wall_seconds']:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
