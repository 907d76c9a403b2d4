"""Can GRPO teach the tiny model to judge when it trains on nothing else?

A diagnostic beside `experiments/probe_judge_learning.py` (which gives the judge labelled verdicts).
Here the warm-started model is trained by plain GRPO through `sparkrl train` on pairwise judge
prompts only (train-split problems, balanced labels, reward 1 when the verdict names the right
answer), many more of them than a SPARK run of the demo recycles. It prints the training
reward every 10 steps (0.5 is chance) and the share of groups whose 8 samples all got the
same reward (near 1 when the verdict has collapsed to one letter), then the held-out pairwise
accuracy of the final model (greedy, 200 test items, one order; `probe_judge_learning.py`'s
measure, with its copy and own-answer shares).

    python experiments/probe_judge_rl.py --model runs/format-tens-seed0/models/warmstart --asked tens \\
        --explicit-carries --templates tiny-fixed --out runs/probe-judge-rl --steps 200 --learning-rate 1e-4

On the one-bit "notes" format (`experiments/demo_text_format.py --asked tens-parity --judge-style notes`):

    python experiments/probe_judge_rl.py --model runs/format-notes-seed0/models/warmstart --asked tens-parity \\
        --explicit-carries --templates tiny-fixed --out runs/probe-judge-rl-notes --steps 100 --learning-rate 3e-4

Other GRPOConfig settings go in `--grpo KEY=VALUE ...` (e.g. `temperature=0.7`,
`top_entropy_quantile=0.05`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from transformers import AutoModelForCausalLM, AutoTokenizer

from probe_judge_learning import held_out_scores, show  # a sibling script in bench/
from sparkrl.data import examples_to_jsonl
from sparkrl.demo.runs import RunSpec, write_config
from sparkrl.demo.workload import demo_grpo_settings
from sparkrl.templates import resolve_templates
from sparkrl.tiny.task import TaskConfig, judge_examples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a warm-started tiny model folder")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--asked", choices=("sum", "tens", "tens-parity"), default="sum")
    parser.add_argument("--explicit-carries", action="store_true")
    parser.add_argument("--templates", default="tiny")
    parser.add_argument("--prompts", type=int, default=3000, help="pairwise training prompts")
    parser.add_argument("--steps", type=int, default=200, help="GRPO steps of 16 prompts x 8 samples")
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--beta", type=float, default=0.0, help="KL coefficient to the warm start")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grpo", nargs="*", default=[], metavar="KEY=VALUE",
                        help="further GRPOConfig settings, e.g. temperature=0.7 top_entropy_quantile=0.05")
    args = parser.parse_args()

    task = TaskConfig(asked=args.asked, explicit_carries=args.explicit_carries)
    templates = resolve_templates(args.templates)
    args.out.mkdir(parents=True, exist_ok=True)
    train = args.out / "pairwise-train.jsonl"
    examples_to_jsonl(judge_examples(task, "train", args.prompts, args.seed, "pairwise", templates), train)
    spec = RunSpec("judge-rl", MappingProxyType({"policy_steps": args.steps, "schedule": "off", "recycling": {}}),
                   args.out / "run", curve_points=1)
    grpo = {**demo_grpo_settings(False, 48), "learning_rate": args.learning_rate, "beta": args.beta,
            **dict(_setting(item) for item in args.grpo)}
    config = write_config(spec, Path(args.model), train, args.seed, args.templates, grpo)
    before = AutoModelForCausalLM.from_pretrained(args.model), AutoTokenizer.from_pretrained(args.model)
    print(f"held-out before RL: {show(held_out_scores(*before, task, templates))}", flush=True)
    print(f"training on {args.prompts} pairwise prompts for {args.steps} steps ({spec.folder / 'train.log'})", flush=True)
    with open(spec.folder / "train.log", "w") as log:
        subprocess.run([sys.executable, "-m", "sparkrl", "train", "--config", str(config)], stdout=log,
                       stderr=subprocess.STDOUT, check=True)
    report_training(spec.folder / "metrics.jsonl")
    model = AutoModelForCausalLM.from_pretrained(spec.final)
    tokenizer = AutoTokenizer.from_pretrained(spec.final)
    print(f"held-out after RL: {show(held_out_scores(model, tokenizer, task, templates))}")
    return 0


def _setting(item: str) -> tuple[str, Any]:
    """`key=value` with the value read as YAML (numbers, booleans, strings)."""
    key, sep, value = item.partition("=")
    if not sep:
        raise SystemExit(f"--grpo wants KEY=VALUE, got {item!r}")
    return key, yaml.safe_load(value)


def report_training(metrics: Path) -> None:
    rows = [row for row in map(json.loads, metrics.read_text().splitlines()) if "reward" in row]
    for start in range(0, len(rows), 10):
        block = rows[start : start + 10]
        reward = sum(r["reward"] for r in block) / len(block)
        same = sum(r["frac_reward_zero_std"] for r in block) / len(block)
        print(f"steps {start + 1}-{start + len(block)}: reward {reward:.3f}, groups with one reward {same:.2f}")


if __name__ == "__main__":
    raise SystemExit(main())
