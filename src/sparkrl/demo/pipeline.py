"""`sparkrl demo`: warm start, plain GRPO and SPARK side by side, held-out evaluation, report.

Stages (each one skipped when its output already exists, so an interrupted demo resumes):
1. warm start: the tiny model is built from scratch and taught the formats of every task
   kind, with judge verdicts and reflection targets that carry no information about
   correctness (docs/tiny.md), saved to DIR/models/warmstart;
2. RL: plain GRPO and SPARK (and, with `ablations`, SPARK with one kind of recycled item)
   from that model, same policy-step budget, same GRPO settings, each through
   `sparkrl train`, in parallel processes;
3. evaluation of every final model and of the checkpoints along the way on held-out problems
   and held-out judge items (`sparkrl.demo.measure`);
4. DIR/summary.json, DIR/report.md and its plots (`sparkrl.demo.report`).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from sparkrl.demo.claims import check_claims
from sparkrl.demo.measure import MeasureJob, measure
from sparkrl.demo.runs import RunError, RunSpec, checkpoints, run_specs, train_all, write_config
from sparkrl.demo.workload import TextWorkload, Workload

Progress = Callable[[str], None]

# The pool of the demo runs keeps only recent items.
POOL_CAPACITY = 64


@dataclass(frozen=True)
class DemoConfig:
    """What the demo runs. What shapes its numbers is here, in the workload (model, task, GRPO
    settings) and in `sparkrl.demo.measure` (greedy decoding, 2 self-reflection rounds).

    jobs: processes run at the same time (training runs, then evaluations), one thread each.
    curve_points: checkpoints per run evaluated for the curves against policy step.
    """

    out: Path
    seed: int = 0
    modality: Literal["text", "image"] = "text"
    quick: bool = False
    ablations: bool = False
    jobs: int = field(default_factory=lambda: max(1, min(4, os.cpu_count() or 1)))
    eval_problems: int = 200
    judge_items: int = 200
    train_problems: int = 4000
    curve_points: int = 4

    def __post_init__(self) -> None:
        if self.modality not in ("text", "image"):
            raise ValueError(f"modality must be 'text' or 'image', got {self.modality!r}")
        for name in ("jobs", "eval_problems", "judge_items", "train_problems", "curve_points"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def workload(self) -> Workload:
        if self.modality == "image":
            from sparkrl.tiny_vl.workload import ImageWorkload

            return ImageWorkload(quick=self.quick)
        return TextWorkload(quick=self.quick)


def run_demo(config: DemoConfig, progress: Progress = print) -> dict[str, Any]:
    """Run (or resume) the whole demo; returns the summary also written to DIR/summary.json."""
    from sparkrl.demo.report import write_report

    started = time.perf_counter()
    out = Path(config.out)
    workload = config.workload()
    out.mkdir(parents=True, exist_ok=True)
    record = {**asdict(config), "out": str(out), "workload": repr(workload)}
    check_resumable(out / "demo-config.json", record)
    (out / "demo-config.json").write_text(json.dumps(record, indent=2))

    warm = out / "models" / "warmstart"
    warm_report = _warm_start(workload, warm, config.seed, progress)
    train = workload.write_train_data(out / "data", config.train_problems, config.seed)

    specs = run_specs(out / "runs", workload.policy_steps, config.curve_points, config.ablations, workload.recycling, POOL_CAPACITY)
    grpo = workload.grpo_settings()
    configs = {spec.name: write_config(spec, warm, train, config.seed, workload.templates, grpo, workload.frozen) for spec in specs}
    progress(f"RL: {', '.join(s.name for s in specs)}; {workload.policy_steps} policy steps each, {config.jobs} at a time")
    train_seconds = train_all(specs, configs, config.jobs, progress)

    finals = {"warmstart": warm} | {s.name: _publish(s, out / "models") for s in specs}
    results, curves = _evaluate(config, workload, out, finals, specs, progress)
    summary = {
        **{name: results[name] for name in finals},
        "wall_seconds": time.perf_counter() - started,
        "seed": config.seed,
        "modality": config.modality,
        "quick": config.quick,
        "policy_steps": workload.policy_steps,
        "train_seconds": train_seconds,
        "warm_start": warm_report,
        "curves": curves,
    }
    summary["claims"] = [claim.to_dict() for claim in check_claims(summary)]
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    write_report(summary, out)
    progress(f"done in {summary['wall_seconds']:.0f}s: {out / 'report.md'}, {out / 'summary.json'}")
    return summary


# Settings that shape the models and numbers: a folder made with other values cannot be resumed.
SHAPING = ("seed", "modality", "quick", "workload", "eval_problems", "judge_items", "train_problems", "curve_points")


def check_resumable(path: Path, record: dict[str, Any]) -> None:
    """Refuse to resume a demo folder made with other settings: its warm start, runs and
    evaluations would be mixed into one summary."""
    if not path.exists():
        return
    before = json.loads(path.read_text())
    changed = [f"{key} {before.get(key)!r} -> {record[key]!r}" for key in SHAPING if before.get(key) != record[key]]
    if changed:
        raise RunError(f"{path.parent} holds a demo run with other settings ({'; '.join(changed)}); "
                       "use --fresh to start it over, or another --out")


def _warm_start(workload: Workload, folder: Path, seed: int, progress: Progress) -> dict[str, Any]:
    report_file = folder / "warmstart.json"
    if report_file.exists():
        progress(f"warm start: already done ({folder})")
        return json.loads(report_file.read_text())
    progress("warm start: building the tiny model from scratch and teaching it the formats")
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    report = workload.warm_start(partial, seed, progress)
    (partial / "warmstart.json").write_text(json.dumps(report, indent=2))
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return report


def _publish(spec: RunSpec, models: Path) -> Path:
    """Copy a run's final model to DIR/models/<name> (a folder `sparkrl eval` and `sparkrl train` accept)."""
    target = models / spec.name
    if not target.is_dir():
        partial = target.with_name(target.name + ".partial")  # a copy cut short is never taken as done
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(spec.final, partial)
        partial.rename(target)
    return target


def _evaluate(
    config: DemoConfig, workload: Workload, out: Path, finals: dict[str, Path], specs: list[RunSpec], progress: Progress
) -> tuple[dict[str, dict[str, float]], dict[str, list[dict[str, Any]]]]:
    """Measure every final model (with self-reflection) and every checkpoint (without)."""
    data = out / "data"
    items = {
        "reasoning": workload.reasoning_items(data, config.eval_problems, config.seed),
        "pointwise": workload.judge_items(data, "pointwise", config.judge_items, config.seed),
        "pairwise": workload.judge_items(data, "pairwise", config.judge_items, config.seed),
    }
    tokens = int(workload.grpo_settings()["max_completion_length"])

    def job(model: Path, target: Path, reflection: bool) -> MeasureJob:
        return MeasureJob(str(model), str(target), items, workload.templates, tokens, reflection=reflection)

    jobs = {name: job(path, out / "eval" / name, True) for name, path in finals.items()}
    points = {
        (spec.name, step): job(folder, out / "eval" / "curves" / spec.name / f"step-{step}", False)
        for spec in specs
        for step, folder in checkpoints(spec)
    }
    progress(f"evaluation: {len(jobs)} models and {len(points)} checkpoints on held-out items")
    keys = list(jobs) + list(points)
    every = [jobs[k] for k in jobs] + [points[k] for k in points]
    with ProcessPoolExecutor(max_workers=config.jobs, mp_context=get_context("spawn")) as pool:
        measured = {}
        for key, result in zip(keys, pool.map(measure, every)):
            measured[key] = result
            label = key if isinstance(key, str) else f"{key[0]} at policy step {key[1]}"
            progress(f"evaluated {label}: " + ", ".join(f"{k} {v:.3f}" for k, v in result.items()))
    results = {name: measured[name] for name in jobs}
    curves: dict[str, list[dict[str, Any]]] = {}
    for spec in specs:
        start = {"policy_step": 0, **{k: v for k, v in results["warmstart"].items() if k != "self_reflection_accuracy"}}
        along = [{"policy_step": step, **measured[(spec.name, step)]} for name, step in points if name == spec.name]
        end = {"policy_step": workload.policy_steps, **{k: v for k, v in results[spec.name].items() if k != "self_reflection_accuracy"}}
        curves[spec.name] = [start, *[p for p in along if p["policy_step"] < workload.policy_steps], end]
    return results, curves
