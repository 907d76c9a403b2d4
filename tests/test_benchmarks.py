"""Benchmark loaders: the real GSM8K files, the generic judging formats, hostile rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sparkrl.benchmarks import (
    BenchmarkError,
    PairwiseItem,
    PointwiseItem,
    gsm8k_pairwise,
    gsm8k_pointwise,
    load_gsm8k,
    load_items,
    load_pairwise,
    load_pointwise,
    parse_data_spec,
)
from sparkrl.verification import extract_final_answer, normalize_answer

def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def solution_row(question: str, correct: tuple[bool, bool, bool, bool]) -> dict:
    row = {"question": question, "ground_truth": "x\nA: 1"}
    for name, ok in zip(("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"), correct):
        row[name] = {"is_correct": ok, "solution": f"{name} work\nA: {1 if ok else 2}"}
    return row


# --------------------------------------------------------------------------- GSM8K


def test_gsm8k_test_answers_come_after_the_marker(gsm8k_test):
    examples = load_gsm8k(gsm8k_test)
    assert len(examples) == 1319
    assert examples[0].answer == "18"
    assert all("####" not in e.answer and e.answer for e in examples)


def test_gsm8k_pairwise_pairs_a_right_and_a_wrong_solution_deterministically(gsm8k_solutions):
    items = gsm8k_pairwise(gsm8k_solutions, seed=0)
    rows = [json.loads(line) for line in gsm8k_solutions.read_text().splitlines()]
    mixed = [r for r in rows if len({r[k]["is_correct"] for k in r if isinstance(r[k], dict)}) == 2]
    assert len(items) == len(mixed)
    right_answers = {r["question"]: normalize_answer(extract_final_answer(r["ground_truth"])) for r in mixed}
    for item in items[:200]:
        correct = item.response_a if item.label == "A" else item.response_b
        wrong = item.response_b if item.label == "A" else item.response_a
        assert normalize_answer(extract_final_answer(correct)) == right_answers[item.question]
        assert normalize_answer(extract_final_answer(wrong)) != right_answers[item.question]
    share_a = sum(i.label == "A" for i in items) / len(items)
    assert 0.4 < share_a < 0.6
    assert gsm8k_pairwise(gsm8k_solutions, seed=0) == items
    assert gsm8k_pairwise(gsm8k_solutions, seed=1) != items


def test_gsm8k_solutions_pointwise_and_pairwise_rules(tmp_path):
    path = write_jsonl(
        tmp_path / "s.jsonl",
        [solution_row("all right", (True,) * 4), solution_row("all wrong", (False,) * 4),
         solution_row("mixed", (True, False, False, True))],
    )
    pointwise = gsm8k_pointwise(path, seed=3)
    assert [(p.question, p.label) for p in pointwise[:2]] == [("all right", "Yes"), ("all wrong", "No")]
    assert all(p.response.endswith("A: 1") == (p.label == "Yes") for p in pointwise)
    (pair,) = gsm8k_pairwise(path, seed=3)
    assert pair.question == "mixed"
    assert (pair.response_a if pair.label == "A" else pair.response_b).endswith("A: 1")
    labels = {gsm8k_pairwise(path, seed=s)[0].label for s in range(20)}
    assert labels == {"A", "B"}


def test_gsm8k_solutions_without_any_mixed_question(tmp_path):
    path = write_jsonl(tmp_path / "s.jsonl", [solution_row("all right", (True,) * 4)])
    with pytest.raises(BenchmarkError, match="no pairwise items"):
        gsm8k_pairwise(path)


def test_gsm8k_solutions_bad_rows_name_file_line_and_field(tmp_path):
    row = solution_row("q", (True,) * 4)
    row["6b_verification"] = {"is_correct": "yes", "solution": "A: 1"}
    path = write_jsonl(tmp_path / "s.jsonl", [solution_row("ok", (True,) * 4), row])
    with pytest.raises(BenchmarkError, match=r"s.jsonl, line 2, field '6b_verification'"):
        gsm8k_pointwise(path)


# --------------------------------------------------------------------------- generic formats


def test_generic_pointwise_accepts_labels_and_booleans(tmp_path):
    path = write_jsonl(
        tmp_path / "p.jsonl",
        [{"question": "q", "response": "r", "label": "yes"}, "",
         {"question": "q", "response": "r", "label": False}, {"question": "q", "response": "r", "correct": True}],
    )
    assert [i.label for i in load_pointwise(path)] == ["Yes", "No", "Yes"]


@pytest.mark.parametrize(
    "row, message",
    [
        ({"question": "q", "response": "r", "label": "maybe"}, r"line 1, field 'label'"),
        ({"question": "q", "response": "r"}, r"line 1: needs field 'label'"),
        ({"question": "", "response": "r", "label": "Yes"}, r"line 1, field 'question'"),
        ({"question": "q", "response": 3, "label": "Yes"}, r"line 1, field 'response'"),
        ("[1, 2]", r"line 1: expected a JSON object"),
        ("{not json", r"line 1: not valid JSON"),
    ],
)
def test_generic_pointwise_hostile_rows(tmp_path, row, message):
    with pytest.raises(BenchmarkError, match=message):
        load_pointwise(write_jsonl(tmp_path / "p.jsonl", [row]))


def test_generic_pairwise_labels(tmp_path):
    rows = [{"question": "q", "response_a": "a", "response_b": "b", "label": label} for label in ("A", "b", "A>B", "B > A")]
    assert [i.label for i in load_pairwise(write_jsonl(tmp_path / "p.jsonl", rows))] == ["A", "B", "A", "B"]
    bad = [{"question": "q", "response_a": "a", "response_b": "b", "label": "tie"}]
    with pytest.raises(BenchmarkError, match="line 1, field 'label'"):
        load_pairwise(write_jsonl(tmp_path / "bad.jsonl", bad))
    with pytest.raises(BenchmarkError, match="no pairwise items"):
        load_pairwise(write_jsonl(tmp_path / "empty.jsonl", [""]))


def test_item_types_validate_and_swap():
    with pytest.raises(ValueError):
        PointwiseItem("q", "r", "yes")
    with pytest.raises(ValueError):
        PairwiseItem("q", "a", "b", "C")
    assert PairwiseItem("q", "a", "b", "A").swapped() == PairwiseItem("q", "b", "a", "B")


# --------------------------------------------------------------------------- dispatch


def test_parse_data_spec():
    assert parse_data_spec("gsm8k:/d/t.jsonl") == ("gsm8k", "/d/t.jsonl")
    assert parse_data_spec("gsm8k-solutions:x.jsonl") == ("gsm8k-solutions", "x.jsonl")
    assert parse_data_spec("/d/a:b.jsonl") == (None, "/d/a:b.jsonl")


def test_load_items_routes_by_kind_and_format(tmp_path):
    solutions = write_jsonl(tmp_path / "s.jsonl", [solution_row("mixed", (True, False, True, False))])
    assert isinstance(load_items("pairwise", f"gsm8k-solutions:{solutions}")[0], PairwiseItem)
    assert isinstance(load_items("pointwise", f"gsm8k-solutions:{solutions}")[0], PointwiseItem)
    reasoning = write_jsonl(tmp_path / "r.jsonl", [{"question": "1+1?", "answer": "2"}])
    assert load_items("reasoning", str(reasoning))[0].answer == "2"
    with pytest.raises(BenchmarkError, match="holds judging items"):
        load_items("reasoning", f"gsm8k-solutions:{solutions}")
    with pytest.raises(BenchmarkError, match="holds reasoning items"):
        load_items("pairwise", f"gsm8k:{reasoning}")
    with pytest.raises(BenchmarkError, match="no such file"):
        load_items("reasoning", str(tmp_path / "missing.jsonl"))
    with pytest.raises(ValueError, match="unknown evaluation kind"):
        load_items("essay", str(reasoning))
