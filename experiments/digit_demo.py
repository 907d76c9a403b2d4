"""The demo's pipeline on the `digit` task: ten possible answers, a policy that answers at once.

An experiment towards issue #20 (docs: experiments/notes/digit-demo-2026-12.md), not the demo.
The task is the hundreds digit of a sum of two 3-digit numbers (`TaskConfig(digits=3,
asked="top")`): one of ten answers, which depends on both carries below it. The policy states
only its answer (`direct_answers`), so plain GRPO cannot saturate it by learning to write a
carry; a judge first works the question column by column (its teacher slips a carry 10% of the
time, the policy's teacher 50%), then writes what it compares, then a verdict drawn at random
in the warm start. How it writes the comparison is `--judge-style` (`sparkrl.tiny.warmstart`):

- `marks`: each candidate copied and marked `+`/`-` against the judge's own answer;
- `checks`: each candidate copied with the judge's own answer beside it, then the mark;
- `lookup`: only which candidate is the judge's own answer (its letter; `+`/`-` pointwise);
- `follows`: a `checks` reply whose verdict is what its own answer implies, from a careless
  judge teacher (`--judge-slip`, the share of carries it forgets): never the truth.

    python experiments/digit_demo.py --out runs/digit-seed0 --seed 0 [--judge-style lookup] [--size small] [--warm-start-only]

The demo's `digit` format (`sparkrl.demo.workload.DIGIT_FORMAT`) is run 16 of the note:
`--judge-style follows --judge-slip 0.75 --warm-start-steps 5000 --warm-start-data 40000 40000
40000 16000 24000 --carry-slip 0.5 --judge-items 12`; this script keeps the defaults its earlier
runs were made with.

`--warm-start-only` builds and measures the warm start alone (held-out policy, judges and what
the judges wrote, `experiments/digit_scaffolding.py`), which is where the formats failed so far.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sparkrl.demo.pipeline import DemoConfig, run_demo
from sparkrl.demo.workload import BOTH_ORDERS_RECYCLING, TextWorkload, Workload

DIGIT = MappingProxyType({
    "digits": 3, "asked": "top", "explicit_carries": True, "direct_answers": True, "judge_slip": 0.1,
    "templates": "tiny-fixed", "judge_style": "lookup", "max_completion_length": 64,
    "recycling": MappingProxyType({**BOTH_ORDERS_RECYCLING, "mixed_pointwise_prob": 0.5, "max_judge_items": 6,
                                   "max_reflection_items": 2}),
    # One pass over fresh problems (2,000 steps x 32): with 600-1,500 of each kind, seen a dozen
    # times, the judge's own worked answer stayed at 54-94% right on held-out prompts.
    "warm_start_data": MappingProxyType({"policy": 16000, "pointwise": 20000, "pairwise": 20000, "reflection": 8000}),
    "learning_rate": 5e-4, "lr_schedule": "cosine", "kl_beta": 0.3, "warm_start_steps": 2000, "rl_steps": 120,
})


@dataclass(frozen=True)
class DigitDemo(DemoConfig):
    judge_style: str = "lookup"
    rl_steps: int = 120
    size: str = "micro"
    comparisons: int = 0
    warm_start_data: tuple[int, ...] = ()
    carry_slip: float = 0.5
    recycled_judge_items: int = 6  # recycling's max_judge_items (and a third of it max_reflection_items)
    warm_start_steps: int = 2000
    learning_rate: float = 5e-4
    kl_beta: float = 0.3
    judge_slip: float = 0.1
    written: bool = False  # policy and reflection replies write the columns (run 23), not only the answer

    def workload(self) -> Workload:
        data = dict(DIGIT["warm_start_data"])
        if self.warm_start_data:
            data = dict(zip(("policy", "pointwise", "pairwise", "reflection", "comparisons"), self.warm_start_data))
        elif self.comparisons:  # drills take the place of policy pairs, so the steps stay one pass
            data.update(policy=data["policy"] - self.comparisons, comparisons=self.comparisons)
        recycling = MappingProxyType({**DIGIT["recycling"], "max_judge_items": self.recycled_judge_items,
                                      "max_reflection_items": max(1, self.recycled_judge_items // 3)})
        return TextWorkload(quick=self.quick, size=self.size,
                            **{**DIGIT, "judge_style": self.judge_style, "rl_steps": self.rl_steps,
                               "warm_start_data": MappingProxyType(data), "carry_slip": self.carry_slip,
                               "recycling": recycling, "warm_start_steps": self.warm_start_steps,
                               "learning_rate": self.learning_rate, "kl_beta": self.kl_beta,
                               "judge_slip": self.judge_slip, "direct_answers": not self.written})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--judge-style", choices=("marks", "checks", "lookup", "picks", "follows"), default="lookup")
    parser.add_argument("--rl-steps", type=int, default=120)
    parser.add_argument("--size", choices=("nano", "micro", "small"), default="micro", help="tiny model size")
    parser.add_argument("--comparisons", type=int, default=0,
                        help="comparison drills in the warm start (WarmStartData.comparisons), in place of policy pairs")
    parser.add_argument("--warm-start-data", type=int, nargs=5, default=(),
                        metavar=("POLICY", "POINTWISE", "PAIRWISE", "REFLECTION", "COMPARISONS"),
                        help="warm-start pairs of each kind (WarmStartData), instead of the defaults and --comparisons")
    parser.add_argument("--carry-slip", type=float, default=0.5, help="the policy teacher's TaskConfig.carry_slip")
    parser.add_argument("--warm-start-steps", type=int, default=2000)
    parser.add_argument("--learning-rate", type=float, default=5e-4, help="RL learning rate (cosine schedule)")
    parser.add_argument("--kl-beta", type=float, default=0.3, help="RL KL coefficient to the warm start")
    parser.add_argument("--judge-items", type=int, default=6,
                        help="recycled judge items per policy round (max_judge_items; max_reflection_items a third)")
    parser.add_argument("--judge-slip", type=float, default=0.1, help="the judge teacher's share of forgotten carries")
    parser.add_argument("--written", action="store_true",
                        help="policy and reflection replies write the columns before the answer (run 23)")
    parser.add_argument("--warm-start-only", action="store_true")
    args = parser.parse_args()
    config = DigitDemo(out=args.out, seed=args.seed, judge_style=args.judge_style, rl_steps=args.rl_steps,
                       size=args.size, comparisons=args.comparisons,
                       warm_start_data=tuple(args.warm_start_data), carry_slip=args.carry_slip,
                       recycled_judge_items=args.judge_items, warm_start_steps=args.warm_start_steps,
                       learning_rate=args.learning_rate, kl_beta=args.kl_beta,
                       judge_slip=args.judge_slip, written=args.written)
    if args.warm_start_only:
        print(json.dumps(measure_warm_start(config), indent=2))
    else:
        run_demo(config)
    return 0


def measure_warm_start(config: DigitDemo) -> dict[str, Any]:
    from digit_scaffolding import scaffolding  # experiments/ is the script's folder

    from sparkrl.demo.measure import MeasureJob, measure

    workload = config.workload()
    folder, evals = Path(config.out) / "models" / "warmstart", Path(config.out) / "eval" / "warmstart"
    report = workload.warm_start(folder, config.seed, print) if not (folder / "config.json").exists() else {}
    items = {"reasoning": workload.reasoning_items(evals, config.eval_problems, config.seed),
             "pointwise": workload.judge_items(evals, "pointwise", config.judge_items, config.seed),
             "pairwise": workload.judge_items(evals, "pairwise", config.judge_items, config.seed)}
    tokens = int(workload.grpo_settings()["max_completion_length"])
    results = measure(MeasureJob(str(folder), str(evals), items, workload.templates, tokens, threads=2))
    wrote = {kind: scaffolding(evals / kind / "single.jsonl", kind, config.judge_style) for kind in ("pairwise", "pointwise")}
    return {"warm_start": report, "measured": results, "wrote": wrote}


if __name__ == "__main__":
    raise SystemExit(main())
