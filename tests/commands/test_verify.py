"""Tests for `sparkrl verify`: single answers, JSONL files, bad rows, and the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sparkrl.cli import main


def write_rows(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def read_verdicts(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_single_answer_prints_verdict_extracted_and_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", r"so the total is \boxed{18}", "She makes 9 * 2 = 18\nA: 18"]) == 0
    out = capsys.readouterr().out
    assert "correct" in out and "extracted: 18" in out and "reason:    string-match" in out


def test_single_wrong_answer(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "#### 17", "18"]) == 0
    out = capsys.readouterr().out
    assert "wrong (score 0.0)" in out and "reason:    mismatch" in out


def test_single_label(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--kind", "label", r"Verdict: \boxed{\text{(A)}}.", "A"]) == 0
    assert "reason:    label-match" in capsys.readouterr().out


def test_file_writes_one_verdict_per_row_and_the_share(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [
        {"prediction": r"\boxed{18}", "answer": "18"},
        {"prediction": "A: 3", "answer": 4},
        {"prediction": "no answer", "answer": "5"},
        {"prediction": r"\boxed{1,000}", "answer": "#### 1000"},
    ]
    source = write_rows(tmp_path / "preds.jsonl", [json.dumps(r) for r in rows] + [""])
    out = tmp_path / "verdicts.jsonl"
    assert main(["verify", "--file", str(source), "--out", str(out)]) == 0
    verdicts = read_verdicts(out)
    assert [v["row"] for v in verdicts] == [1, 2, 3, 4]
    assert [v["correct"] for v in verdicts] == [True, False, False, True]
    assert verdicts[2]["reason"] == "no-answer" and verdicts[2]["extracted"] is None
    assert "correct: 2/4 (50.00%)" in capsys.readouterr().out


def test_file_without_out_streams_verdicts_to_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_rows(tmp_path / "p.jsonl", [json.dumps({"pred": r"\boxed{No}", "gold": "No"})])
    assert main(["verify", "--file", str(source), "--kind", "label", "--prediction-field", "pred", "--answer-field", "gold"]) == 0
    captured = capsys.readouterr()
    assert [json.loads(line)["reason"] for line in captured.out.splitlines()] == ["label-match"]
    assert "correct: 1/1" in captured.err


def test_nested_fields_read_the_gsm8k_solutions_layout(tmp_path: Path) -> None:
    row = {"ground_truth": "9 * 2 = 18\nA: 18", "175b": {"is_correct": True, "solution": "2 * 9 = 18\nA: 18"}}
    source = write_rows(tmp_path / "sol.jsonl", [json.dumps(row)])
    out = tmp_path / "v.jsonl"
    args = ["verify", "--file", str(source), "--out", str(out), "--prediction-field", "175b.solution"]
    assert main([*args, "--answer-field", "ground_truth"]) == 0
    assert read_verdicts(out)[0]["correct"] is True


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("not json", "row 3: not valid JSON"),
        ('["a list"]', "row 3: expected a JSON object"),
        ('{"prediction": "A: 1"}', "row 3: missing field 'answer'"),
        ('{"prediction": null, "answer": "1"}', "row 3: field 'prediction' must be a string or number"),
    ],
)
def test_bad_row_names_file_row_and_field_and_keeps_earlier_verdicts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad_line: str, message: str
) -> None:
    good = json.dumps({"prediction": "A: 1", "answer": "1"})
    source = write_rows(tmp_path / "rows.jsonl", [good, good, bad_line, good])
    out = tmp_path / "verdicts.jsonl"
    assert main(["verify", "--file", str(source), "--out", str(out)]) == 2
    assert f"{source}: {message}" in capsys.readouterr().err
    assert [v["row"] for v in read_verdicts(out)] == [1, 2]


@pytest.mark.parametrize(
    "argv",
    [
        ["verify"],
        ["verify", "only-a-prediction"],
        ["verify", "pred", "gold", "--file", "x.jsonl"],
        ["verify", "--file", "/nonexistent/rows.jsonl"],
        ["verify", "1", "1", "--timeout", "0"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "sparkrl verify:" in capsys.readouterr().err


def test_entry_point_end_to_end(tmp_path: Path) -> None:
    source = write_rows(tmp_path / "p.jsonl", [json.dumps({"prediction": r"\boxed{\frac{1}{2}}", "answer": "0.5"})])
    out = tmp_path / "v.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "sparkrl", "verify", "--file", str(source), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "correct: 1/1 (100.00%)" in result.stdout
    assert read_verdicts(out)[0]["reason"] == "number-match"
