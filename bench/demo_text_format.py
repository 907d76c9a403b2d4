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
Two further options make the judge's job smaller still (docs/demo.md has what they measured):

- `--asked tens-parity`: the answer is one bit, the parity of the tens digit, so the two
  candidates of a pairwise item are always `0` and `1`;
- `--judge-style notes`: warm-start judge replies note, after the worked solution, whether
  each candidate equals the judge's own answer (`A: 0!=1 B: 1==1`), then give a random verdict.

and two more change what the judge is given:

- `--both-orders`: each mixed group's pair becomes two pairwise items, the correct answer at
  (A) in one and at (B) in the other (`RecyclingConfig.pairwise_both_orders`);
- `--paired-verdicts`: the warm start shows every judge prompt twice, once with each verdict.

    python bench/demo_text_format.py --out runs/format-tens --seed 0 [--rl-steps 40] [--size small]
    python bench/demo_text_format.py --out runs/format-notes --seed 0 --asked tens-parity --judge-style notes
    python bench/demo_text_format.py --out runs/format-both --seed 0 --asked tens-parity --judge-style notes --both-orders
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from sparkrl.demo.pipeline import DemoConfig, run_demo
from sparkrl.demo.workload import PAIRWISE_RICH_RECYCLING, TextWorkload, Workload

@dataclass(frozen=True)
class TunedTextWorkload(TextWorkload):
    """The text workload with its own learning rate for both RL runs (the demo's is 3e-4)."""

    learning_rate: float = 3e-4

    def grpo_settings(self) -> dict:
        return {**super().grpo_settings(), "learning_rate": self.learning_rate}


@dataclass(frozen=True)
class FixedFormatDemo(DemoConfig):
    rl_steps: int = 40
    size: str = "micro"
    asked: str = "tens"
    templates: str = "tiny-fixed"
    judge_style: str = "compare"
    learning_rate: float = 3e-4
    both_orders: bool = False
    paired_verdicts: bool = False

    def workload(self) -> Workload:
        recycling = dict(PAIRWISE_RICH_RECYCLING)
        if self.both_orders:  # two pairwise items per mixed group; the cap must let both through
            recycling.update(pairwise_both_orders=True, judge_items_per_group=2.0)
        return TunedTextWorkload(size=self.size, asked=self.asked, explicit_carries=True, templates=self.templates,
                                 judge_style=self.judge_style, paired_verdicts=self.paired_verdicts,
                                 rl_steps=self.rl_steps,
                                 recycling=recycling, learning_rate=self.learning_rate)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rl-steps", type=int, default=40, help="policy steps of each RL run")
    parser.add_argument("--size", choices=("nano", "micro", "small"), default="micro", help="tiny model size")
    parser.add_argument("--asked", choices=("tens", "tens-parity"), default="tens", help="what the task asks for")
    parser.add_argument("--templates", default="tiny-fixed", help="judge template set")
    parser.add_argument("--judge-style", choices=("compare", "notes"), default="compare", help="how warm-start judge replies are written")
    parser.add_argument("--learning-rate", type=float, default=3e-4, help="RL learning rate of both runs")
    parser.add_argument("--both-orders", action="store_true",
                        help="each mixed group gives its pair twice, the correct answer at (A) and at (B)")
    parser.add_argument("--paired-verdicts", action="store_true",
                        help="warm start: every judge prompt twice, once with each verdict")
    args = parser.parse_args()
    config = FixedFormatDemo(out=args.out, seed=args.seed, rl_steps=args.rl_steps, size=args.size, asked=args.asked,
                             templates=args.templates, judge_style=args.judge_style,
                             learning_rate=args.learning_rate, both_orders=args.both_orders,
                             paired_verdicts=args.paired_verdicts)
    summary = run_demo(config)
    for name in ("warmstart", "grpo", "spark"):
        print(name, json.dumps({k: round(v, 3) for k, v in summary[name].items() if isinstance(v, float)}))
    print(f"wall {summary['wall_seconds']:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
