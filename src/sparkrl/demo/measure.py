"""Held-out measurements of one model folder, through `sparkrl.evaluation` (as `sparkrl eval`).

Each measurement is an ordinary evaluation run written under the demo folder (one JSONL line
per item with the model's raw outputs, resumable), so every number in the demo's report can
be traced to the outputs behind it. Decoding is greedy throughout, as in the authors' test-time
evaluation.

- policy_accuracy: single greedy answer, held-out problems;
- judge_pointwise_accuracy: Yes/No on held-out candidates (balanced labels);
- judge_pairwise_accuracy: A/B on held-out pairs, each asked in both orders (a judge that
  always answers `A` scores 50%);
- self_reflection_accuracy: answer, self-judge, revise when the verdict is not Yes, up to 2
  rounds; the last answer counts; with it self_reflection_wrong_to_right and
  self_reflection_right_to_wrong, how many held-out problems the loop turned from a wrong first
  answer into a right last one and back.

`paired_counts` compares two models' single answers on the same held-out problems, item by item
(what the claim of a policy lead needs to tell a lead from the noise of a few hundred problems).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

METRICS = ("policy_accuracy", "judge_pointwise_accuracy", "judge_pairwise_accuracy", "self_reflection_accuracy")


@dataclass(frozen=True)
class MeasureJob:
    """One model folder to measure on the held-out item sets.

    items: kind ("reasoning", "pointwise", "pairwise") -> items (a list the process can pickle).
    reflection: also run self-reflection (the costliest measurement; final models only).
    """

    model: str
    out: str
    items: Mapping[str, Sequence[Any]]
    templates: str
    max_new_tokens: int
    reflection: bool = True
    batch_size: int = 64
    threads: int = 1


def measure(job: MeasureJob) -> dict[str, float]:
    """Run the job's evaluations; returns the metrics of `METRICS` that were measured."""
    import torch
    from transformers.utils import logging as hf_logging

    from sparkrl.evaluation import EvalConfig, evaluate
    from sparkrl.inference import HFBackend, SamplingParams, StrategySettings
    from sparkrl.templates import resolve_templates

    torch.set_num_threads(job.threads)
    hf_logging.disable_progress_bar()
    backend = HFBackend.from_pretrained(job.model, batch_size=job.batch_size)
    settings = StrategySettings(
        sampling=SamplingParams(temperature=0.0, max_new_tokens=job.max_new_tokens),
        rounds=2,
        judge_max_new_tokens=job.max_new_tokens,
        templates=resolve_templates(job.templates),
    )

    def run(kind: str, strategies: tuple[str, ...]) -> dict[str, Any]:
        config = EvalConfig(kind=kind, strategies=strategies, settings=settings, suffix="", chunk_size=256,
                            show_progress=False)
        return evaluate(job.items[kind], backend, config, Path(job.out) / kind)["strategies"]

    reasoning = run("reasoning", ("single", "reflection") if job.reflection else ("single",))
    results = {
        "policy_accuracy": reasoning["single"]["accuracy"],
        "judge_pointwise_accuracy": run("pointwise", ("single",))["single"]["accuracy"],
        "judge_pairwise_accuracy": run("pairwise", ("single",))["single"]["accuracy"],
    }
    if job.reflection:
        reflection = reasoning["reflection"]
        results["self_reflection_accuracy"] = reflection["accuracy"]
        results["self_reflection_wrong_to_right"] = reflection.get("wrong_to_right", 0)
        results["self_reflection_right_to_wrong"] = reflection.get("right_to_wrong", 0)
    return results


def paired_counts(first: Path, second: Path) -> dict[str, int]:
    """How two evaluations of the same items differ, item by item: `n` items, `first_only` right
    in `first` alone, `second_only` right in `second` alone (each a `sparkrl.evaluation` JSONL of
    one strategy, e.g. `DIR/eval/spark/reasoning/single.jsonl`; items matched by their hash).
    Raises ValueError naming both files when they do not hold the same items."""
    a, b = _correct_by_item(first), _correct_by_item(second)
    if a.keys() != b.keys():
        raise ValueError(f"{first} and {second} do not hold the same items ({len(a)} and {len(b)}; "
                         f"{len(a.keys() ^ b.keys())} in one only)")
    return {"n": len(a), "first_only": sum(a[k] and not b[k] for k in a), "second_only": sum(b[k] and not a[k] for k in a)}


def _correct_by_item(path: Path) -> dict[str, bool]:
    rows = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                row = json.loads(line)
                rows[row["item_hash"]] = float(row["correct"]) >= 1.0
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
                raise ValueError(f"{path}: row {number}: no item_hash and correct ({err})") from err
    return rows
