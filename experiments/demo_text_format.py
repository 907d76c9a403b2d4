"""The demo's pipeline on the one-token, fixed-distance text format: does SPARK's judge learn then?

A diagnostic beside `experiments/probe_judge_learning.py`, not the demo. It runs `sparkrl demo`'s
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
  each candidate equals the judge's own answer (`A: 0!=1 B: 1==1`), then give a random verdict;
  `--judge-style marks` writes one mark per candidate instead (`A: 0- B: 1+`), the last one
  right before the verdict.

and two more change what the judge is given:

- `--both-orders`: each mixed group's pair becomes two pairwise items, the correct answer at
  (A) in one and at (B) in the other (`RecyclingConfig.pairwise_both_orders`);
- `--paired-verdicts`: the warm start shows every judge prompt twice, once with each verdict.

and the rest change how RL trains both runs (docs/demo.md, "What did not help"):

- `--lr-schedule`, `--beta`, `--learning-rate`: TRL's learning-rate schedule, KL coefficient to
  the warm start, and learning rate;
- `--warm-start-steps`, `--rl-steps`: supervised warm-start steps and policy steps of each RL
  run (the demo's `one-bit` default: 2,000 and 240, with `--learning-rate 5e-4 --lr-schedule cosine --beta 0.3`);
- `--steps-per-round N`: N optimizer steps on each round's completions, each on a 1/N share;
- `--schedule mix`: SPARK's recycled items fill half of every round's slots instead of rounds
  of their own (`sparkrl.schedule`);
- `--top-entropy-quantile Q`: only the top-Q share of tokens by entropy enter the policy loss
  (TRL's `top_entropy_quantile`), which leaves out the judge's near-certain copies and marks;
- `--untied`: the tiny model gets an output layer of its own instead of its input embeddings;
- `--mark-tokens`: the tokenizer reads a mark glued to a box (`+\\boxed{`, `-\\boxed{`) as one
  token, so a `marks` judge predicts its verdict at the position of its last mark.

    python experiments/demo_text_format.py --out runs/format-tens --seed 0 [--rl-steps 40] [--size small]
    python experiments/demo_text_format.py --out runs/format-notes --seed 0 --asked tens-parity --judge-style notes
    python experiments/demo_text_format.py --out runs/format-both --seed 0 --asked tens-parity --judge-style notes --both-orders
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparkrl.demo.pipeline import DemoConfig, run_demo
from sparkrl.demo.workload import BOTH_ORDERS_RECYCLING, PAIRWISE_RICH_RECYCLING, TextWorkload, Workload

@dataclass(frozen=True)
class TunedTextWorkload(TextWorkload):
    """The text workload with its own token selection for both RL runs."""

    top_entropy_quantile: float = 1.0

    def grpo_settings(self) -> dict:
        return {**super().grpo_settings(), "top_entropy_quantile": self.top_entropy_quantile}


@dataclass(frozen=True)
class FixedFormatDemo(DemoConfig):
    """`sparkrl demo`'s pipeline on a `TunedTextWorkload` built from `options` (its fields)."""

    options: Mapping[str, Any] = field(default_factory=dict)

    def workload(self) -> Workload:
        return TunedTextWorkload(**self.options)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rl-steps", type=int, default=40, help="policy steps of each RL run")
    parser.add_argument("--warm-start-steps", type=int, default=1000, help="supervised warm-start steps")
    parser.add_argument("--size", choices=("nano", "micro", "small"), default="micro", help="tiny model size")
    parser.add_argument("--asked", choices=("tens", "tens-parity"), default="tens", help="what the task asks for")
    parser.add_argument("--templates", default="tiny-fixed", help="judge template set")
    parser.add_argument("--judge-style", choices=("compare", "notes", "marks"), default="compare", help="how warm-start judge replies are written")
    parser.add_argument("--learning-rate", type=float, default=3e-4, help="RL learning rate of both runs")
    parser.add_argument("--lr-schedule", choices=("constant", "cosine", "linear"), default="constant",
                        help="RL learning-rate schedule of both runs (TRL's lr_scheduler_type)")
    parser.add_argument("--beta", type=float, default=0.0, help="KL coefficient to the warm start of both RL runs")
    parser.add_argument("--top-entropy-quantile", type=float, default=1.0,
                        help="policy loss on this top fraction of tokens by entropy only (TRL's top_entropy_quantile)")
    parser.add_argument("--steps-per-round", type=int, default=1,
                        help="optimizer steps per generation round (each on an equal share of its completions)")
    parser.add_argument("--schedule", choices=("alternate", "mix"), default="alternate",
                        help="SPARK's round schedule (sparkrl.schedule)")
    parser.add_argument("--untied", action="store_true", help="tiny model with its own output layer")
    parser.add_argument("--mark-tokens", action="store_true",
                        help="the judge's last mark and the verdict's box are one token (+\\boxed{, -\\boxed{)")
    parser.add_argument("--first-verdict-share", type=float, default=0.5,
                        help="warm start: how often a judge verdict is the first label (Yes, A), drawn at random")
    parser.add_argument("--both-orders", action="store_true",
                        help="each mixed group gives its pair twice, the correct answer at (A) and at (B)")
    parser.add_argument("--paired-verdicts", action="store_true",
                        help="warm start: every judge prompt twice, once with each verdict")
    args = parser.parse_args()
    options = {
        "size": args.size, "asked": args.asked, "explicit_carries": True, "templates": args.templates,
        "judge_style": args.judge_style, "paired_verdicts": args.paired_verdicts, "rl_steps": args.rl_steps,
        "warm_start_steps": args.warm_start_steps,
        "recycling": dict(BOTH_ORDERS_RECYCLING if args.both_orders else PAIRWISE_RICH_RECYCLING),
        "learning_rate": args.learning_rate, "lr_schedule": args.lr_schedule, "kl_beta": args.beta,
        "top_entropy_quantile": args.top_entropy_quantile, "steps_per_round": args.steps_per_round,
        "schedule": args.schedule, "tie_embeddings": not args.untied, "mark_tokens": args.mark_tokens,
        "first_verdict_share": args.first_verdict_share,
    }
    config = FixedFormatDemo(out=args.out, seed=args.seed, options=options)
    summary = run_demo(config)
    for name in ("warmstart", "grpo", "spark"):
        print(name, json.dumps({k: round(v, 3) for k, v in summary[name].items() if isinstance(v, float)}))
    print(f"wall {summary['wall_seconds']:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
