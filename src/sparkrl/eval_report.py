"""One comparison report of finished evaluations: models as rows, benchmarks as columns.

Each evaluation folder (written by `sparkrl.evaluation.evaluate`) holds one model's results
on one data set, for one or more strategies. A benchmark is one strategy of one such
evaluation, named by the stem of its data file, its kind and, unless it is `single`, its
strategy: `gsm8k_test/reasoning`, `gsm8k_test/reasoning/reflection`. Folders written before
config.json recorded the data spec are named by kind (and strategy) alone.

Cells are accuracies; for best-of-k evaluations (kind `bestof`), the RewardBench 2 score
(its `score`: the mean of the subset scores, Ties by its rating rule). The average is over every benchmark of the table and is left out for
a model that lacks one (an average over fewer columns would not compare). Differences are
each model's accuracy minus the baseline model's, per column.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import mean
from typing import Any

AVERAGE = "average"


class ReportError(ValueError):
    """Evaluation folders that cannot be compared; the message names the folder and why."""


@dataclass(frozen=True)
class Evaluation:
    """A finished evaluation: its folder, the model's name in the report, its summary.json
    and the data spec it was run on (None when config.json does not say)."""

    folder: Path
    model: str
    summary: Mapping[str, Any]
    data: str | None = None


@dataclass(frozen=True)
class Report:
    """Accuracy by model (rows, in order) and benchmark (columns, in order)."""

    benchmarks: tuple[str, ...]
    rows: Mapping[str, Mapping[str, float]]
    baseline: str
    sources: Mapping[str, tuple[str, ...]]

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.benchmarks, AVERAGE)

    def values(self, model: str) -> dict[str, float | None]:
        row: dict[str, float | None] = {b: self.rows[model].get(b) for b in self.benchmarks}
        known = [v for v in row.values() if v is not None]
        return row | {AVERAGE: mean(known) if len(known) == len(row) else None}

    def differences(self, model: str) -> dict[str, float | None]:
        """`model` minus the baseline, per column (None where either is missing)."""
        base = self.values(self.baseline)
        return {c: None if v is None or base[c] is None else v - base[c] for c, v in self.values(model).items()}


# --------------------------------------------------------------------------- reading


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ReportError(f"{path}: not valid JSON ({err})") from None


def load_evaluation(folder: str | Path, name: str | None = None) -> Evaluation:
    """The evaluation in `folder`; `name` replaces the backend's model name."""
    folder = Path(folder)
    if not (folder / "summary.json").is_file():
        raise ReportError(f"{folder}: no summary.json (not an evaluation folder, or its run did not finish)")
    summary = _read_json(folder / "summary.json")
    config = _read_json(folder / "config.json") if (folder / "config.json").is_file() else {}
    model = name or config.get("backend", summary.get("backend", {})).get("model")
    if not model:
        raise ReportError(f"{folder}: the backend names no model; give one with --names")
    return Evaluation(folder, str(model), summary, config.get("data"))


def load_evaluations(folders: Sequence[str | Path], names: Sequence[str] | None = None) -> list[Evaluation]:
    """One evaluation per folder; `names`, when given, name the models folder by folder."""
    if names is not None and len(names) != len(folders):
        raise ReportError(f"{len(names)} names for {len(folders)} folders; give one name per folder")
    return [load_evaluation(f, names[i] if names else None) for i, f in enumerate(folders)]


# --------------------------------------------------------------------------- the table


def benchmark_name(kind: str, strategy: str, data: str | None = None) -> str:
    """`STEM/KIND[/STRATEGY]`, STEM being the data file's (a `FORMAT:` prefix dropped)."""
    parts = [Path(data.rpartition(":")[2]).stem] if data else []
    return "/".join([*parts, kind, *([strategy] if strategy != "single" else [])])


def build_report(evaluations: Sequence[Evaluation], baseline: str | None = None) -> Report:
    """The table of `evaluations` (rows in order of first appearance); the baseline is the
    first model unless named."""
    if not evaluations:
        raise ReportError("no evaluations to compare")
    rows: dict[str, dict[str, float]] = {}
    where: dict[tuple[str, str], Path] = {}
    sources: dict[str, list[str]] = {}
    for evaluation in evaluations:
        sources.setdefault(evaluation.model, []).append(str(evaluation.folder))
        row = rows.setdefault(evaluation.model, {})
        for strategy, stats in evaluation.summary["strategies"].items():
            benchmark = benchmark_name(evaluation.summary["kind"], strategy, evaluation.data)
            if (evaluation.model, benchmark) in where:
                raise ReportError(
                    f"{evaluation.folder}: {evaluation.model} on {benchmark} is already in "
                    f"{where[evaluation.model, benchmark]}; name the models apart with --names"
                )
            where[evaluation.model, benchmark] = evaluation.folder
            headline = stats["score"] if "score" in stats else stats.get("accuracy")
            if headline is not None:
                row[benchmark] = float(headline)
    baseline = evaluations[0].model if baseline is None else baseline
    if baseline not in rows:
        raise ReportError(f"--baseline {baseline!r} is none of the models: {', '.join(rows)}")
    benchmarks = tuple(dict.fromkeys(b for _, b in where))
    return Report(benchmarks, rows, baseline, {m: tuple(f) for m, f in sources.items()})


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _points(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.1f}"


def report_markdown(report: Report) -> str:
    header = "| model | " + " | ".join(report.columns) + " |"
    rule = "|---" * (len(report.columns) + 1) + "|"
    lines = ["# Evaluation report", "", "Accuracy (%) per benchmark; the average is over all of them.", "",
             header, rule]
    lines += [f"| {m} | " + " | ".join(map(_pct, report.values(m).values())) + " |" for m in report.rows]
    others = [m for m in report.rows if m != report.baseline]
    if others:
        lines += ["", f"Difference against {report.baseline} (percentage points).", "", header, rule]
        lines += [f"| {m} | " + " | ".join(map(_points, report.differences(m).values())) + " |" for m in others]
    lines += ["", "| model | evaluation folders |", "|---|---|"]
    lines += [f"| {m} | " + ", ".join(f"`{f}`" for f in folders) + " |" for m, folders in report.sources.items()]
    return "\n".join(lines) + "\n"


def report_csv(report: Report) -> str:
    """One row per model: accuracies (fractions), then `delta COLUMN` against the baseline."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", *report.columns, *(f"delta {c}" for c in report.columns)])
    for model in report.rows:
        cells = [*report.values(model).values(), *report.differences(model).values()]
        writer.writerow([model, *("" if v is None else f"{v:.6g}" for v in cells)])
    return buffer.getvalue()


# --------------------------------------------------------------------------- files


def plot_report(report: Report, path: Path) -> None:
    """Grouped bars: one group per column, one bar per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(report.rows)
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(report.columns) + 2), 4.0))
    for index, model in enumerate(models):
        values = list(report.values(model).values())
        xs = [i + (index - (len(models) - 1) / 2) * width for i in range(len(report.columns))]
        bars = ax.bar(xs, [0.0 if v is None else 100 * v for v in values], width, label=model)
        ax.bar_label(bars, labels=[_pct(v) for v in values], fontsize=7)
    ax.set_xticks(range(len(report.columns)), report.columns, fontsize=8, rotation=15)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(report: Report, out: str | Path) -> list[Path]:
    """report.md, report.csv and report.png in `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "report.md", out / "report.csv", out / "report.png"]
    paths[0].write_text(report_markdown(report), encoding="utf-8")
    paths[1].write_text(report_csv(report), encoding="utf-8")
    plot_report(report, paths[2])
    return paths
