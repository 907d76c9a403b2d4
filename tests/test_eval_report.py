"""The comparison report of finished evaluations: table values, differences, files, errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from sparkrl.eval_report import (
    ReportError,
    benchmark_name,
    build_report,
    load_evaluation,
    load_evaluations,
    report_csv,
    report_markdown,
    write_report,
)

GSM8K = "gsm8k:/data/gsm8k_test.jsonl"
PAIRS = "gsm8k-solutions:/data/gsm8k_model_solutions.jsonl"


def evaluation_folder(folder: Path, model: str, kind: str, data: str | None, **accuracy: float) -> Path:
    """What `evaluation.evaluate` leaves in a folder, reduced to what the report reads."""
    folder.mkdir(parents=True)
    backend = {"backend": "hf", "model": model}
    strategies = {name: {"n": 10, "accuracy": value} for name, value in accuracy.items()}
    summary = {"kind": kind, "backend": backend, "accuracy": next(iter(accuracy.values())), "n": 10,
               "strategies": strategies}
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "config.json").write_text(json.dumps({"config": {"kind": kind}, "backend": backend, "data": data}))
    return folder


@pytest.fixture
def folders(tmp_path: Path) -> list[Path]:
    return [
        evaluation_folder(tmp_path / "base-gsm8k", "org/base", "reasoning", GSM8K, single=0.5, reflection=0.4),
        evaluation_folder(tmp_path / "spark-gsm8k", "org/spark", "reasoning", GSM8K, single=0.75, reflection=0.8),
        evaluation_folder(tmp_path / "base-pairs", "org/base", "pairwise", PAIRS, single=0.5),
        evaluation_folder(tmp_path / "spark-pairs", "org/spark", "pairwise", PAIRS, single=0.6),
    ]


COLUMNS = ("gsm8k_test/reasoning", "gsm8k_test/reasoning/reflection", "gsm8k_model_solutions/pairwise", "average")


def test_benchmark_names():
    assert benchmark_name("reasoning", "single", GSM8K) == "gsm8k_test/reasoning"
    assert benchmark_name("reasoning", "best_of_n", "/d/aime.jsonl") == "aime/reasoning/best_of_n"
    assert benchmark_name("pairwise", "single") == "pairwise"  # folders from before config.json kept the data


def test_table_values_and_differences_against_the_baseline(folders):
    report = build_report(load_evaluations(folders))
    assert report.columns == COLUMNS and list(report.rows) == ["org/base", "org/spark"]
    assert report.baseline == "org/base"
    assert report.values("org/spark") == pytest.approx(dict(zip(COLUMNS, (0.75, 0.8, 0.6, 2.15 / 3))))
    assert report.differences("org/spark") == pytest.approx(dict(zip(COLUMNS, (0.25, 0.4, 0.1, 0.25))))
    assert report.differences("org/base") == dict.fromkeys(COLUMNS, 0.0)
    flipped = build_report(load_evaluations(folders, ["b", "s", "b", "s"]), baseline="s")
    assert flipped.differences("b")["average"] == pytest.approx(-0.25)
    text = report_markdown(flipped)
    assert "| b | 50.0 | 40.0 | 50.0 | 46.7 |" in text and "| b | -25.0 | -40.0 | -10.0 | -25.0 |" in text
    assert "Difference against s" in text and str(folders[0]) in text


def test_a_model_missing_a_benchmark_has_no_average(folders):
    report = build_report(load_evaluations(folders[:3]))
    assert report.values("org/spark")["gsm8k_model_solutions/pairwise"] is None
    assert report.values("org/spark")["average"] is None
    assert report.differences("org/spark")["gsm8k_test/reasoning"] == pytest.approx(0.25)


def test_csv_columns(folders):
    rows = list(csv.reader(report_csv(build_report(load_evaluations(folders))).splitlines()))
    assert rows[0] == ["model", *COLUMNS, *(f"delta {c}" for c in COLUMNS)]
    assert [r[0] for r in rows[1:]] == ["org/base", "org/spark"]
    assert [float(x) for x in rows[2][1:]] == pytest.approx(
        [0.75, 0.8, 0.6, 2.15 / 3, 0.25, 0.4, 0.1, 0.25], abs=1e-5
    )


def test_write_report_writes_table_csv_and_chart(folders, tmp_path):
    paths = write_report(build_report(load_evaluations(folders)), tmp_path / "report")
    assert [p.name for p in paths] == ["report.md", "report.csv", "report.png"]
    assert (tmp_path / "report" / "report.png").stat().st_size > 1000


def test_errors_name_the_folder(folders, tmp_path):
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    with pytest.raises(ReportError, match=f"{unfinished}: no summary.json"):
        load_evaluation(unfinished)
    with pytest.raises(ReportError, match="3 names for 4 folders"):
        load_evaluations(folders, ["a", "b", "c"])
    with pytest.raises(ReportError, match="none of the models: org/base, org/spark"):
        build_report(load_evaluations(folders), baseline="org/grpo")
    with pytest.raises(ReportError, match="org/base on gsm8k_test/reasoning is already in .*base-gsm8k"):
        build_report(load_evaluations([folders[0], folders[0]]))
