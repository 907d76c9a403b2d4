"""Throughput of a reasoning evaluation on CPU: batched generation vs one question at a time.

Builds the embedded tiny model (untrained: throughput does not depend on the weights, and
every answer runs to the token limit, the worst case), asks it `--questions` addition
problems of the tiny task through the full `evaluate` path (prompting, generation,
verification, result files), once with `--batch-size` sequences per `generate` call and
once with one, and prints the median wall time over `--runs` runs of each and the ratio.

    .venv/bin/python bench/bench_inference.py [--questions 100] [--batch-size 50] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from sparkrl.evaluation import EvalConfig, evaluate
from sparkrl.inference import HFBackend, SamplingParams, StrategySettings
from sparkrl.tiny.model import build_tiny_model
from sparkrl.tiny.task import TaskConfig, generate_examples
from sparkrl.tiny.templates import TINY_TEMPLATES
from sparkrl.tiny.tokenizer import build_tokenizer


def time_eval(backend: HFBackend, examples: list, config: EvalConfig) -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        evaluate(examples, backend, config, out)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", default="micro", help="tiny model size (nano, micro, small)")
    args = parser.parse_args()

    torch.set_num_threads(1)  # comparable numbers on a shared machine
    tokenizer = build_tokenizer()
    model = build_tiny_model(tokenizer, seed=0, size=args.size)
    examples = generate_examples(TaskConfig(), "test", args.questions, seed=0)
    sampling = SamplingParams(max_new_tokens=args.max_new_tokens)
    config = EvalConfig(
        kind="reasoning",
        settings=StrategySettings(sampling=sampling, templates=TINY_TEMPLATES),
        suffix="",
        chunk_size=args.questions,
        show_progress=False,
    )
    medians = {}
    for label, batch_size in (("batched", args.batch_size), ("one at a time", 1)):
        backend = HFBackend(model, tokenizer, batch_size=batch_size, name=f"tiny-{args.size}")
        times = [time_eval(backend, examples, config) for _ in range(args.runs)]
        medians[label] = statistics.median(times)
        print(
            f"{label:>14} (batch {batch_size:>3}): median {medians[label]:6.2f} s over {args.runs} runs "
            f"[{min(times):.2f}-{max(times):.2f}], {args.questions / medians[label]:7.1f} questions/s"
        )
    print(f"speed-up of batching: {medians['one at a time'] / medians['batched']:.1f}x")


if __name__ == "__main__":
    main()
