"""The demo's RL runs: one `sparkrl train` configuration each, launched side by side.

Every run is the public command (`python -m sparkrl train --config FILE`) on the same
warm-started model with the same policy-step budget and GRPO settings; runs differ only in
their `spark` section (plain GRPO is `schedule: off`). Each run gets one thread and its own
process, so on a 2-core machine plain GRPO and SPARK train at the same time.

A run that finished earlier (`sparkrl train` exited 0; marked by a `finished` file) is not trained again, and a run that
was interrupted resumes from its newest checkpoint, so re-running the demo never loses work.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, SimpleNamespace
from typing import Any, Protocol

import yaml

from sparkrl.schedule import optimizer_steps_per_round, round_budget

Progress = Callable[[str], None]

# Ablations: SPARK with a single kind of recycled item.
ABLATIONS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "spark-pointwise": ("pointwise",),
    "spark-pairwise": ("pairwise",),
    "spark-reflection": ("reflection",),
})


class RunError(RuntimeError):
    """A training run failed; the message names its log file."""


@dataclass(frozen=True)
class RunSpec:
    """One RL run of the demo."""

    name: str
    spark: Mapping[str, Any]
    folder: Path
    curve_points: int

    @property
    def final(self) -> Path:
        return self.folder / "final"

    @property
    def log(self) -> Path:
        return self.folder / "train.log"

    @property
    def done(self) -> bool:
        """Trained to the end: `sparkrl train` exited 0 (a `final/` folder alone may be half
        written by an interrupted save)."""
        return (self.folder / "finished").exists() and self.final.is_dir()


# The plain GRPO run with SPARK's round budget as its policy steps (`run_specs`).
EQUAL_ROUNDS = "grpo-rounds"


def run_specs(
    root: Path, policy_steps: int, curve_points: int, ablations: bool, recycling: Mapping[str, Any],
    pool_capacity: int | None, schedule: str = "alternate",
) -> list[RunSpec]:
    """Plain GRPO, SPARK, plain GRPO at SPARK's round budget (`EQUAL_ROUNDS`, where that is more
    than `policy_steps`) and (optionally) the single-kind ablations; the SPARK runs use
    `schedule` (`sparkrl.schedule`)."""
    base = {"policy_steps": policy_steps, "recycling": dict(recycling), "pool_capacity": pool_capacity}
    specs = [
        RunSpec("grpo", {**base, "schedule": "off"}, root / "grpo", curve_points),
        RunSpec("spark", {**base, "schedule": schedule}, root / "spark", curve_points),
    ]
    rounds = round_budget(schedule, policy_steps)
    if rounds > policy_steps:
        # Plain GRPO given as many generation rounds as SPARK may take (a recycled round after
        # each policy round): the comparison at equal rollouts, beside the one at equal policy steps.
        specs.append(RunSpec(EQUAL_ROUNDS, {**base, "policy_steps": rounds, "schedule": "off"}, root / EQUAL_ROUNDS,
                             curve_points))
    if ablations:
        for name, kinds in ABLATIONS.items():
            spark = {**base, "schedule": schedule, "recycling": {**recycling, "kinds": list(kinds)}}
            specs.append(RunSpec(name, spark, root / name, curve_points))
    return specs


def write_config(
    spec: RunSpec, model: Path, train: Path, seed: int, templates: str, grpo: Mapping[str, Any], freeze: Sequence[str] = ()
) -> Path:
    """The YAML configuration `sparkrl train` reads for this run; returns its path."""
    policy_steps = int(spec.spark["policy_steps"])
    rounds = round_budget(spec.spark["schedule"], policy_steps)
    config = {
        "model": {"path": str(model), "freeze": list(freeze)},
        "data": {"train": str(train)},
        "output_dir": str(spec.folder),
        "seed": seed,
        "prompt": {"suffix": ""},  # the tiny model pays for every token; its task needs no instruction
        "spark": {**spec.spark, "recycling": {**spec.spark["recycling"], "templates": templates}},
        "grpo": {
            **grpo,
            "logging_steps": 1,
            "save_strategy": "steps",
            "save_steps": max(1, rounds // spec.curve_points) * _optimizer_steps_per_round(grpo),
            "report_to": [],
            "use_cpu": True,
            "disable_tqdm": True,
        },
    }
    spec.folder.mkdir(parents=True, exist_ok=True)
    path = spec.folder / "demo-config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _optimizer_steps_per_round(grpo: Mapping[str, Any]) -> int:
    """Optimizer steps of one round under these GRPO settings (one process, TRL's defaults for
    what they leave out), so that checkpoints fall between rounds
    (`sparkrl.runs.check_checkpoints_between_rounds`)."""
    per_device = int(grpo.get("per_device_train_batch_size", 8))
    accumulation = int(grpo.get("gradient_accumulation_steps", 1))
    generation = int(grpo.get("generation_batch_size") or per_device * accumulation)
    return optimizer_steps_per_round(SimpleNamespace(
        steps_per_generation=generation // per_device, num_iterations=int(grpo.get("num_iterations", 1)),
        gradient_accumulation_steps=accumulation))


@dataclass
class _Running:
    spec: RunSpec
    process: subprocess.Popen[bytes]
    started: float = field(default_factory=time.perf_counter)


class SideWork(Protocol):
    """Work that uses the cores training leaves free (the demo's evaluations)."""

    def trained(self, spec: RunSpec) -> None:
        """`spec` has finished training (now, or in an earlier demo run)."""
        ...

    def pump(self, slots: int) -> None:
        """Collect finished jobs and start more while fewer than `slots` run."""
        ...


def train_all(
    specs: Sequence[RunSpec], configs: Mapping[str, Path], jobs: int, progress: Progress, every_s: float = 15.0,
    side: SideWork | None = None,
) -> dict[str, float]:
    """Train every run not finished yet, `jobs` at a time; returns wall seconds per run.

    side: told of every trained run, and given the slots that no training needs once every
    run has started (a training never waits for side work, so the critical path stays the
    longest run).
    Whatever stops this loop (a failed run, Ctrl-C) stops and reaps the runs still going, so
    none keeps writing checkpoints into a folder that the next demo run resumes from."""
    waiting = [s for s in specs if not s.done]
    for spec in specs:
        if spec.done:
            progress(f"{spec.name}: already trained ({spec.final})")
            if side is not None:
                side.trained(spec)
    running: list[_Running] = []
    seconds: dict[str, float] = {}
    last_report = 0.0
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                spec = waiting.pop(0)
                running.append(_Running(spec, _launch(spec, configs[spec.name])))
                progress(f"{spec.name}: training started (log: {spec.log})")
            time.sleep(0.5)
            for job in [j for j in running if j.process.poll() is not None]:
                running.remove(job)
                if job.process.returncode != 0:
                    raise RunError(f"{job.spec.name}: training failed (exit {job.process.returncode}); see {job.spec.log}")
                (job.spec.folder / "finished").write_text("sparkrl train exited 0\n")
                seconds[job.spec.name] = time.perf_counter() - job.started
                progress(f"{job.spec.name}: finished in {seconds[job.spec.name]:.0f}s")
                if side is not None:
                    side.trained(job.spec)
            if side is not None and not waiting:
                side.pump(jobs - len(running))
            if running and time.perf_counter() - last_report >= every_s:
                last_report = time.perf_counter()
                progress(" | ".join(describe_progress(j.spec) for j in running))
    finally:
        for job in running:
            job.process.terminate()
        for job in running:
            job.process.wait()
    return seconds


def _launch(spec: RunSpec, config: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "sparkrl", "train", "--config", str(config)]
    if any(spec.folder.glob("checkpoint-*")):
        command.append("--resume")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    with spec.log.open("ab") as log:  # the child keeps its own copy of the handle
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)


def read_metrics(folder: Path) -> list[dict[str, Any]]:
    """The run's logged steps (`metrics.jsonl`); a line being written is skipped."""
    path = folder / "metrics.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def describe_progress(spec: RunSpec) -> str:
    """One short status: policy steps done, last policy reward, last judge accuracy."""
    rows = [r for r in read_metrics(spec.folder) if "spark/policy_rounds" in r or "spark/policy_reward" in r]
    if not rows:
        return f"{spec.name}: starting"
    done = max(int(r.get("spark/policy_rounds", 0)) for r in rows)
    parts = [f"{spec.name}: policy step {done}/{spec.spark['policy_steps']}"]
    for key, label in (("spark/policy_reward", "reward"), ("spark/pairwise_accuracy", "pairwise"), ("spark/pointwise_accuracy", "pointwise")):
        values = [r[key] for r in rows if key in r]
        if values:
            parts.append(f"{label} {values[-1]:.2f}")
    return " ".join(parts)


def checkpoints(spec: RunSpec) -> list[tuple[int, Path]]:
    """(policy steps trained, folder) of the saved checkpoints, in order. A SPARK policy round
    and the recycled round after it share a policy-step count; the later checkpoint (highest
    global step) stands for that count, so the choice never depends on directory order."""
    latest: dict[int, tuple[int, Path]] = {}
    for folder in spec.folder.glob("checkpoint-*"):
        state = folder / "sparkrl_state.json"
        if state.exists() and folder.name.removeprefix("checkpoint-").isdigit():
            policy_steps, step = int(json.loads(state.read_text())["policy_rounds"]), int(folder.name.split("-")[1])
            if policy_steps not in latest or step > latest[policy_steps][0]:
                latest[policy_steps] = (step, folder)
    return [(policy_steps, folder) for policy_steps, (_, folder) in sorted(latest.items())]
