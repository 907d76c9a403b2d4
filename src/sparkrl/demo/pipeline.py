"""`sparkrl demo`: warm start, plain GRPO and SPARK side by side, held-out evaluation, report.

Stages (each one skipped when its output already exists, so an interrupted demo resumes):
1. warm start: the tiny model is built from scratch and taught the formats of every task
   kind, with judge verdicts and reflection targets that carry no information about
   correctness beyond the warm-start teacher's own answers (docs/tiny.md), saved to
   DIR/models/warmstart; a format that ships its warm start (`digit`) copies it instead;
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Literal

from sparkrl.demo.claims import check_claims
from sparkrl.demo.measure import MeasureJob, measure, paired_counts
from sparkrl.demo.runs import RunError, RunSpec, checkpoints, run_specs, train_all, write_config
from sparkrl.demo.workload import TEXT_FORMATS, Workload, text_workload

Progress = Callable[[str], None]

# The pool of the demo runs keeps only recent items.
POOL_CAPACITY = 64
# Held-out problems and judge items of each kind with `quick` (`DemoConfig.held_out_sizes`).
QUICK_HELD_OUT = 60


@dataclass(frozen=True)
class DemoConfig:
    """What the demo runs. What shapes its numbers is here, in the workload (model, task, GRPO
    settings) and in `sparkrl.demo.measure` (greedy decoding, 2 self-reflection rounds).

    text_format: the text task's format (`sparkrl.demo.workload.TEXT_FORMATS`); not used by
        the image modality.
    jobs: processes run at the same time (training runs and evaluations), one thread each.
    curve_points: checkpoints per run evaluated for the curves against policy step.
    build_warm_start: build the warm start from scratch even where the workload ships one
        (`Workload.shipped_warm_start`; the `digit` format's takes about 7 minutes on 2 cores).
    """

    out: Path
    seed: int = 0
    modality: Literal["text", "image"] = "text"
    quick: bool = False
    ablations: bool = False
    text_format: str = "digit"
    jobs: int = field(default_factory=lambda: max(1, min(4, os.cpu_count() or 1)))
    eval_problems: int = 200
    judge_items: int = 200
    train_problems: int = 4000
    curve_points: int = 4
    build_warm_start: bool = False

    def __post_init__(self) -> None:
        if self.modality not in ("text", "image"):
            raise ValueError(f"modality must be 'text' or 'image', got {self.modality!r}")
        if self.text_format not in TEXT_FORMATS:
            raise ValueError(f"text format must be one of {sorted(TEXT_FORMATS)}, got {self.text_format!r}")
        for name in ("jobs", "eval_problems", "judge_items", "train_problems", "curve_points"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def held_out_sizes(self) -> tuple[int, int]:
        """(problems, judge items of each kind) measured per model; `quick` caps both at
        `QUICK_HELD_OUT`, its numbers meaning nothing anyway."""
        if self.quick:
            return min(self.eval_problems, QUICK_HELD_OUT), min(self.judge_items, QUICK_HELD_OUT)
        return self.eval_problems, self.judge_items

    def workload(self) -> Workload:
        if self.modality == "image":
            from sparkrl.tiny_vl.workload import ImageWorkload

            return ImageWorkload(quick=self.quick)
        return text_workload(self.text_format, self.quick)


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
    warm_report = _warm_start(workload, warm, config.seed, progress, config.build_warm_start)
    train = workload.write_train_data(out / "data", config.train_problems, config.seed)

    specs = run_specs(out / "runs", workload.policy_steps, config.curve_points, config.ablations, workload.recycling, POOL_CAPACITY,
                      workload.schedule)
    grpo = workload.grpo_settings()
    configs = {spec.name: write_config(spec, warm, train, config.seed, workload.templates, grpo, workload.frozen) for spec in specs}
    progress(f"RL: {', '.join(s.name for s in specs)}; {workload.policy_steps} policy steps each, {config.jobs} at a time")
    with Evaluations(config, workload, out, warm, progress) as evaluations:
        train_seconds = train_all(specs, configs, config.jobs, progress, side=evaluations)
        evaluations.finish(config.jobs)
    finals = {"warmstart": warm} | {s.name: evaluations.finals[s.name] for s in specs}
    results = {name: evaluations.measured[name] for name in finals}
    curves = evaluations.curves(specs)
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
    # Every demo trains both (`run_specs`); their answers compared problem by problem.
    summary["policy_paired"] = paired_counts(*(out / "eval" / name / "reasoning" / "single.jsonl" for name in ("spark", "grpo")))
    summary["claims"] = [claim.to_dict() for claim in check_claims(summary)]
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    write_report(summary, out)
    progress(f"done in {summary['wall_seconds']:.0f}s: {out / 'report.md'}, {out / 'summary.json'}")
    return summary


# Settings that shape the models and numbers: a folder made with other values cannot be resumed.
SHAPING = ("seed", "modality", "quick", "workload", "eval_problems", "judge_items", "train_problems", "curve_points",
           "build_warm_start")


def check_resumable(path: Path, record: dict[str, Any]) -> None:
    """Refuse to resume a demo folder made with other settings: its warm start, runs and
    evaluations would be mixed into one summary."""
    if not path.exists():
        return
    before = json.loads(path.read_text())
    changed = [f"{key} {before.get(key)!r} -> {record.get(key)!r}" for key in SHAPING if before.get(key) != record.get(key)]
    if changed:
        raise RunError(f"{path.parent} holds a demo run with other settings ({'; '.join(changed)}); "
                       "use --fresh to start it over, or another --out")


# The warm start runs alone, before the RL runs, on this many threads whatever the machine has:
# float sums depend on how they are split between threads, so a fixed count (and one thread per
# RL run and per evaluation, `sparkrl.demo.runs`, `sparkrl.demo.measure`) makes a seed give the
# same numbers every time on one machine (measured: docs/demo.md). Other CPUs (another
# instruction set) may still round differently. torch's deterministic algorithms are not
# switched on: on the CPU they doubled the time of a demo round (1.12 -> 2.30 s, plain GRPO,
# transformers' `full_determinism`) and are not needed for a single-threaded run to repeat.
WARM_START_THREADS = 2


@contextmanager
def fixed_threads(threads: int) -> Iterator[None]:
    """Run the block on `threads` torch threads, then restore the count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _warm_start(workload: Workload, folder: Path, seed: int, progress: Progress, build: bool = False) -> dict[str, Any]:
    report_file = folder / "warmstart.json"
    if report_file.exists():
        progress(f"warm start: already done ({folder})")
        return json.loads(report_file.read_text())
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shipped = None if build else workload.shipped_warm_start()
    if shipped is not None:
        report = {**shipped_report(workload, shipped), "shipped": shipped.name}
        progress(f"warm start: the shipped one ({shipped.name}, built with seed {report['recipe']['seed']}; "
                 "--build-warm-start builds it anew)")
        shutil.copytree(shipped, partial)
    else:
        progress("warm start: building the tiny model from scratch and teaching it the formats")
        partial.mkdir(parents=True)
        with fixed_threads(WARM_START_THREADS):
            report = workload.warm_start(partial, seed, progress)
        report["recipe"] = workload.warm_start_recipe(seed)
    (partial / "warmstart.json").write_text(json.dumps(report, indent=2))
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return report


def shipped_report(workload: Workload, shipped: Path) -> dict[str, Any]:
    """The report of a shipped warm start, once its recorded recipe is checked against the
    workload's: a warm start built for other settings is refused, never used."""
    try:
        report = json.loads((shipped / "warmstart.json").read_text())
        recipe = report["recipe"]
        expected = workload.warm_start_recipe(int(recipe["seed"]))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise RunError(f"{shipped / 'warmstart.json'}: not a shipped warm start with a recipe ({err})") from err
    if recipe != expected:
        changed = sorted(key for key in set(recipe) | set(expected) if recipe.get(key) != expected.get(key))
        raise RunError(f"{shipped / 'warmstart.json'}: built for other settings ({', '.join(changed)} differ); "
                       "run with --build-warm-start, or rebuild the shipped one (docs/demo.md)")
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


def held_out_items(workload: Workload, data: Path, problems: int, judge_items: int, seed: int) -> dict[str, list[Any]]:
    """The held-out item sets every model of a demo is measured on, by kind (`MeasureJob.items`)."""
    return {
        "reasoning": workload.reasoning_items(data, problems, seed),
        "pointwise": workload.judge_items(data, "pointwise", judge_items, seed),
        "pairwise": workload.judge_items(data, "pairwise", judge_items, seed),
    }


class Evaluations:
    """Held-out evaluation of the warm start and of each run as soon as its training ends,
    on the cores that training leaves free (`train_all` gives it the idle slots): every final
    model with self-reflection, every checkpoint without (for the curves)."""

    def __init__(self, config: DemoConfig, workload: Workload, out: Path, warm: Path, progress: Progress) -> None:
        self.items = held_out_items(workload, out / "data", *config.held_out_sizes, config.seed)
        self.templates = workload.templates
        self.tokens = int(workload.grpo_settings()["max_completion_length"])
        self.out, self.progress = out, progress
        self.finals: dict[str, Path] = {"warmstart": warm}
        self.queue: list[tuple[Any, MeasureJob]] = [("warmstart", self._job(warm, out / "eval" / "warmstart", True))]
        self.pending: dict[Future[dict[str, float]], Any] = {}
        self.measured: dict[Any, dict[str, float]] = {}
        self.failed: list[str] = []
        self.pool = ProcessPoolExecutor(max_workers=config.jobs, mp_context=get_context("spawn"))

    def __enter__(self) -> Evaluations:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        # After an error (a failed run, Ctrl-C) do not wait minutes for measurements in flight.
        self.pool.shutdown(wait=kind is None, cancel_futures=True)

    def _job(self, model: Path, target: Path, reflection: bool) -> MeasureJob:
        return MeasureJob(str(model), str(target), self.items, self.templates, self.tokens, reflection=reflection)

    def trained(self, spec: RunSpec) -> None:
        final = self.finals[spec.name] = _publish(spec, self.out / "models")
        points = checkpoints(spec)
        self.queue.append((spec.name, self._job(final, self.out / "eval" / spec.name, True)))
        self.queue += [((spec.name, step), self._job(folder, self.out / "eval" / "curves" / spec.name / f"step-{step}", False))
                       for step, folder in points]
        self.progress(f"evaluation of {spec.name} queued: final model and {len(points)} checkpoints on held-out items")

    def pump(self, slots: int) -> None:
        for future in [f for f in self.pending if f.done()]:
            key = self.pending.pop(future)
            label = key if isinstance(key, str) else f"{key[0]} at policy step {key[1]}"
            try:
                result = self.measured[key] = future.result()
            except Exception as err:  # reported by `finish`; the runs still training go on
                self.failed.append(f"evaluation of {label} failed: {type(err).__name__}: {err}")
                self.progress(self.failed[-1])
                continue
            self.progress(f"evaluated {label}: " + ", ".join(f"{k} {v:.3f}" for k, v in result.items()))
        while self.queue and len(self.pending) < slots:
            key, job = self.queue.pop(0)
            self.pending[self.pool.submit(measure, job)] = key

    def finish(self, slots: int) -> None:
        """Run what is left with all `slots`; returns when everything is measured, and raises
        `RunError` naming every evaluation that failed (here or while training went on)."""
        while self.queue or self.pending:
            self.pump(slots)
            if self.pending:
                wait(list(self.pending), return_when=FIRST_COMPLETED)
        if self.failed:
            raise RunError("; ".join(self.failed))

    def curves(self, specs: list[RunSpec]) -> dict[str, list[dict[str, Any]]]:
        """Per run: the warm start at step 0, its checkpoints, its final model at its last step."""
        def point(step: int, key: Any) -> dict[str, Any]:
            return {"policy_step": step, **{k: v for k, v in self.measured[key].items() if k != "self_reflection_accuracy"}}

        curves: dict[str, list[dict[str, Any]]] = {}
        for spec in specs:
            last = int(spec.spark["policy_steps"])
            steps = sorted(key[1] for key in self.measured if isinstance(key, tuple) and key[0] == spec.name)
            along = [point(step, (spec.name, step)) for step in steps if step < last]
            curves[spec.name] = [point(0, "warmstart"), *along, point(last, spec.name)]
        return curves
