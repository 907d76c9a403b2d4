"""Time a training round of SPARK against plain GRPO on the same tiny configuration.

Both runs start from the same briefly warm-started tiny model (so that its answers are
well-formed and verification costs what it costs in real runs), with the same data, batch
shape and seeds. Rounds are compared per generated token (round time / generated tokens), so
the ratio of SPARK's policy rounds to GRPO's rounds is SPARK's own overhead beyond the
tokens it generates: gathering rollouts, recycling them, scheduling and bookkeeping.
Recycled rounds are reported separately, also per generated token.

Every completion is exactly `max_completion_length` tokens long (`min_new_tokens` equal to it,
through GRPOConfig's `generation_kwargs`), so every round of both runs generates the same number
of tokens and the comparison does not hinge on how long the model happens to answer. The
price: text forced after the tiny model's answer spoils it, so nearly every group is all wrong
(rewards 0, so policy rounds have zero advantages and recycling builds no pairwise items);
`--natural-length` lets completions end at EOS instead (rewards and all item kinds as in real
runs, but token counts then differ between rounds and are divided out per token).

Runs alternate (GRPO, SPARK, GRPO, ...) so that machine load affects both alike; the first
round of each run (warm-up) is left out. Each repeat gives one ratio per round kind (SPARK's
median over its rounds / the paired GRPO run's median); the median and the range (min-max) of
these per-repeat ratios are printed side by side, so the spread is visible next to the estimate.

    .venv/bin/python bench/bench_training_step.py [--repeats 3] [--policy-steps 6]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

from sparkrl.config import config_from_mapping
from sparkrl.data import examples_to_jsonl
from sparkrl.runs import build_trainer
from sparkrl.tiny.model import build_tiny_model
from sparkrl.tiny.task import TaskConfig, generate_examples
from sparkrl.tiny.templates import TINY_TEMPLATES
from sparkrl.tiny.tokenizer import build_tokenizer
from sparkrl.tiny.warmstart import WarmStartConfig, WarmStartData, build_pairs, warm_start

TASK = TaskConfig(digits=2)
ROWS = 128  # 16 prompts x 8 samples per round
NEW_TOKENS = 48  # every completion is exactly this long (min_new_tokens = max_completion_length)


class RoundTimer(TrainerCallback):
    """Seconds per generated token of each optimizer step (one round here), tagged by kind."""

    def __init__(self, trainer, rows_per_round):
        self.trainer, self.rows, self.rounds = trainer, rows_per_round, []
        self._start, self._kind, self._seconds = 0.0, "", 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self._seconds = time.perf_counter() - self._start
        self._kind = "recycled" if self.trainer.round_state.previous_was_recycled else "policy"

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "completions/mean_length" in logs:
            tokens = float(logs["completions/mean_length"]) * self.rows
            self.rounds.append((self._kind, self._seconds / tokens))


def warm_model(folder: Path) -> Path:
    """A tiny model that writes well-formed (if often wrong) solutions; saved once, reused."""
    tokenizer = build_tokenizer()
    model = build_tiny_model(tokenizer, seed=0, size="nano")
    pairs = build_pairs(TASK, WarmStartData(policy=800, pointwise=200, pairwise=200, reflection=200), seed=0)
    warm_start(model, tokenizer, pairs, WarmStartConfig(steps=200, batch_size=32), seed=0, progress=None)
    model.save_pretrained(folder / "model")
    tokenizer.save_pretrained(folder / "model")
    return folder / "model"


def run_once(
    schedule: str, folder: Path, policy_steps: int, seed: int, fixed_length: bool, **grpo: object
) -> list[tuple[str, float]]:
    """(round kind, seconds per generated token) of each round after the first; `grpo`
    overrides settings of the GRPOConfig."""
    from sparkrl.models import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(str(folder / "model"))
    config = config_from_mapping(
        {
            "model": {"path": "in-memory"},
            "data": {"train": str(folder / "train.jsonl")},
            "output_dir": tempfile.mkdtemp(prefix=f"run-{schedule}-{seed}-", dir=folder),
            "seed": seed,
            "prompt": {"suffix": ""},
            "spark": {"schedule": schedule, "policy_steps": policy_steps, "recycling": {"balance_labels": False}},
            "grpo": {
                "num_generations": 8,
                "per_device_train_batch_size": ROWS,
                "max_completion_length": NEW_TOKENS,
                "generation_kwargs": {"min_new_tokens": NEW_TOKENS} if fixed_length else None,
                "learning_rate": 1e-4,
                "logging_steps": 1,
                "save_strategy": "no",
                "report_to": [],
                "use_cpu": True,
                "disable_tqdm": True,
                **grpo,
            },
        }
    )
    config.spark.recycling["templates"] = TINY_TEMPLATES
    trainer = build_trainer(config, model=model, tokenizer=tokenizer)
    timer = RoundTimer(trainer, ROWS)
    trainer.add_callback(timer)
    trainer.train()
    return timer.rounds[1:]


def per_repeat_ratios(runs: list[tuple[list[tuple[str, float]], list[tuple[str, float]]]], kind: str) -> list[float]:
    """For each repeat (GRPO rounds, SPARK rounds): SPARK's median over its `kind` rounds / GRPO's median."""
    ratios = []
    for grpo, spark in runs:
        mine = [t for k, t in spark if k == kind]
        if mine:
            ratios.append(statistics.median(mine) / statistics.median(t for _, t in grpo))
    return ratios


def summary(ratios: list[float]) -> str:
    spread = f"range {min(ratios):.3f}-{max(ratios):.3f}"
    return f"median {statistics.median(ratios):.3f}, {spread} over {len(ratios)} repeats"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--policy-steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--natural-length", action="store_true", help="let completions stop at EOS")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        examples_to_jsonl(generate_examples(TASK, "train", 2000, seed=0), folder / "train.jsonl")
        warm_model(folder)
        for repeat in range(args.repeats):
            pair = []
            for schedule in ("off", "alternate"):
                fixed = not args.natural_length
                rounds = run_once(schedule, folder, args.policy_steps, seed=repeat, fixed_length=fixed)
                print(f"  {schedule} rounds (ms/token): " + ", ".join(f"{k} {1000 * t:.3f}" for k, t in rounds))
                pair.append(rounds)
            runs.append(tuple(pair))
            print(f"repeat {repeat + 1}/{args.repeats}: done", flush=True)
    grpo = statistics.median(t for g, _ in runs for _, t in g)
    length = "up to" if args.natural_length else "exactly"
    print(f"{length} {NEW_TOKENS} generated tokens per completion (16 prompts x 8 samples per round); "
          f"rounds timed per repeat: grpo {len(runs[0][0])}, spark {len(runs[0][1])}")
    print(f"plain GRPO                : {1000 * grpo:.3f} ms per generated token (median over all rounds)")
    for kind in ("policy", "recycled"):
        spark = [t for _, s in runs for k, t in s if k == kind]
        if spark:
            ratios = per_repeat_ratios(runs, kind)
            print(f"SPARK {kind + ' rounds':<20}: {1000 * statistics.median(spark):.3f} ms per generated token; "
                  f"ratio to GRPO per repeat: {summary(ratios)}")
    policy = per_repeat_ratios(runs, "policy")
    print(f"SPARK overhead beyond generated tokens: median {100 * (statistics.median(policy) - 1):+.1f}%, "
          f"range {100 * (min(policy) - 1):+.1f}% to {100 * (max(policy) - 1):+.1f}% (target < 5%)")


if __name__ == "__main__":
    main()
