"""Time a training round of SPARK against plain GRPO on the same tiny configuration.

Both runs start from the same briefly warm-started tiny model (so that its answers are
well-formed and verification costs what it costs in real runs), with the same data, batch
shape and seeds. Rounds are compared per generated token (round time / generated tokens), so
the ratio of SPARK's policy rounds to GRPO's rounds is SPARK's own overhead beyond the
tokens it generates: gathering rollouts, recycling them, scheduling and bookkeeping.
Recycled rounds are reported separately, also per generated token.

Runs alternate (GRPO, SPARK, GRPO, ...) so that machine load affects both alike; the first
round of each run (warm-up) is left out; medians over all rounds of all repeats are printed.

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


def run_once(schedule: str, folder: Path, policy_steps: int, seed: int) -> list[tuple[str, float]]:
    from sparkrl.runs import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(str(folder / "model"))
    config = config_from_mapping(
        {
            "model": {"path": "in-memory"},
            "data": {"train": str(folder / "train.jsonl")},
            "output_dir": str(folder / f"run-{schedule}-{seed}"),
            "seed": seed,
            "prompt": {"suffix": ""},
            "spark": {"schedule": schedule, "policy_steps": policy_steps, "recycling": {"balance_labels": False}},
            "grpo": {
                "num_generations": 8,
                "per_device_train_batch_size": ROWS,
                "max_completion_length": 48,
                "learning_rate": 1e-4,
                "logging_steps": 1,
                "save_strategy": "no",
                "report_to": [],
                "use_cpu": True,
                "disable_tqdm": True,
            },
        }
    )
    config.spark.recycling["templates"] = TINY_TEMPLATES
    trainer = build_trainer(config, model=model, tokenizer=tokenizer)
    timer = RoundTimer(trainer, ROWS)
    trainer.add_callback(timer)
    trainer.train()
    return timer.rounds[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--policy-steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        examples_to_jsonl(generate_examples(TASK, "train", 2000, seed=0), folder / "train.jsonl")
        warm_model(folder)
        times: dict[str, list[float]] = {"grpo": [], "spark-policy": [], "spark-recycled": []}
        for repeat in range(args.repeats):
            for schedule in ("off", "alternate"):
                rounds = run_once(schedule, folder, args.policy_steps, seed=repeat)
                print(f"  {schedule} rounds (ms/token): " + ", ".join(f"{k} {1000 * t:.2f}" for k, t in rounds))
                for kind, seconds in rounds:
                    key = "grpo" if schedule == "off" else f"spark-{kind}"
                    times[key].append(seconds)
                print(f"repeat {repeat + 1}/{args.repeats} {schedule}: done", flush=True)
    grpo = statistics.median(times["grpo"])
    policy = statistics.median(times["spark-policy"])
    print(f"rounds timed: grpo {len(times['grpo'])}, spark policy {len(times['spark-policy'])}, "
          f"spark recycled {len(times['spark-recycled'])} (16 prompts x 8 samples per round)")
    print(f"median ms per generated token, plain GRPO         : {1000 * grpo:.3f}")
    print(f"median ms per generated token, SPARK policy rounds: {1000 * policy:.3f}  (ratio {policy / grpo:.3f})")
    if times["spark-recycled"]:
        recycled = statistics.median(times["spark-recycled"])
        print(f"median ms per generated token, SPARK recycled     : {1000 * recycled:.3f}  "
              f"(ratio {recycled / grpo:.3f}; longer prompts)")
    print(f"SPARK overhead beyond generated tokens: {100 * (policy / grpo - 1):+.1f}% (target < 5%)")


if __name__ == "__main__":
    main()
