"""Tests for sparkrl.data: every input format, the authors' `message` rows, bad rows."""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparkrl.data import (
    SUPPORTED_SUFFIXES,
    DataConfig,
    DatasetError,
    examples_to_jsonl,
    gsm8k_final_answer,
    load_examples,
    read_examples_jsonl,
)
from sparkrl.rows import Example

ROWS = [
    {"question": "What is 2+3?", "answer": "5"},
    {"question": "Name the colour of the sky.", "answer": "blue", "task": "trivia",
     "system": "Be brief."},
]


def write_jsonl(path: Path, rows: list, blank_lines: bool = False) -> Path:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    separator = "\n\n" if blank_lines else "\n"
    path.write_text(separator.join(lines) + "\n", encoding="utf-8")
    return path


def make_png(path: Path) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (3, 2), color=(200, 10, 10)).save(path)
    return path


def authors_row(image: str, text: str = "What is the area?", answer: str = "12") -> dict:
    messages = [{"role": "user", "content": [{"type": "image", "image": image},
                                             {"type": "text", "text": text}]}]
    return {"message": json.dumps(messages), "answer": answer}


def uniform(rows: list[dict]) -> list[dict]:
    """Rows with the same keys (Dataset.from_list takes its columns from the first row)."""
    keys = {key for row in rows for key in row}
    return [{key: row.get(key) for key in sorted(keys)} for row in rows]


def load_error(path: Path, config: DataConfig | None = None) -> DatasetError:
    with pytest.raises(DatasetError) as caught:
        load_examples(path, config)
    return caught.value


# ------------------------------------------------------------------------------ formats

def test_jsonl_rows_keep_fields_and_line_provenance(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", ROWS, blank_lines=True)
    loaded = load_examples(path)
    first, second = loaded.examples
    assert loaded.skipped == []
    assert first == Example("What is 2+3?", "5", source={"file": str(path), "row": 1})
    assert (second.task, second.system) == ("trivia", "Be brief.")
    # a blank line sits between the rows, so the second row is on line 3
    assert second.source == {"file": str(path), "row": 3}


@pytest.mark.parametrize("wrap", [False, True], ids=["list", "data-key"])
def test_json_list_and_data_wrapper(tmp_path, wrap):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"data": ROWS} if wrap else ROWS), encoding="utf-8")
    examples = load_examples(path).examples
    assert [e.answer for e in examples] == ["5", "blue"]
    assert [e.source["row"] for e in examples] == [0, 1]


def test_parquet_file_with_numeric_answers(tmp_path):
    import pyarrow
    import pyarrow.parquet

    table = pyarrow.table({"question": [f"q{i}" for i in range(3000)],
                           "answer": list(range(3000))})
    path = tmp_path / "d.parquet"
    pyarrow.parquet.write_table(table, path, row_group_size=700)
    examples = load_examples(path).examples
    assert len(examples) == 3000
    assert (examples[2999].question, examples[2999].answer) == ("q2999", "2999")
    assert examples[2999].source["row"] == 2999  # indices run on across batches


def test_saved_hf_dataset(tmp_path):
    import datasets

    datasets.Dataset.from_list(uniform(ROWS)).save_to_disk(str(tmp_path / "saved"))
    examples = load_examples(tmp_path / "saved").examples
    assert [e.question for e in examples] == [r["question"] for r in ROWS]
    assert examples[1].task == "trivia"


def test_saved_dataset_dict_needs_a_split(tmp_path):
    import datasets

    folder = tmp_path / "saved"
    datasets.DatasetDict({
        "train": datasets.Dataset.from_list(uniform(ROWS)),
        "test": datasets.Dataset.from_list(ROWS[:1]),
    }).save_to_disk(str(folder))
    assert len(load_examples(folder, DataConfig(split="test")).examples) == 1
    assert len(load_examples(folder, DataConfig(split="train")).examples) == 2
    assert "choose one with split" in str(load_error(folder))
    error = load_error(folder, DataConfig(split="validation"))
    assert "'validation'" in str(error) and "['test', 'train']" in str(error)


def test_saved_dataset_with_embedded_images_uses_image_root(tmp_path):
    import datasets

    image = make_png(tmp_path / "pics" / "cat.png")
    rows = [{"question": "What animal?", "answer": "cat", "images": [str(image)]}]
    features = datasets.Features({"question": datasets.Value("string"),
                                  "answer": datasets.Value("string"),
                                  "images": datasets.List(datasets.Image())})
    datasets.Dataset.from_list(rows, features=features).save_to_disk(str(tmp_path / "saved"))
    error = load_error(tmp_path / "saved")
    assert error.field == "images" and "image_root" in error.reason
    loaded = load_examples(tmp_path / "saved", DataConfig(image_root=tmp_path / "pics"))
    assert loaded.examples[0].images == (str(image),)


# ------------------------------------------------------------------ questions and images

def test_chat_message_question_with_system_turn_and_images(tmp_path):
    first = make_png(tmp_path / "a.png")
    second = make_png(tmp_path / "sub" / "b.png")
    row = {"question": [
        {"role": "system", "content": "You are careful."},
        {"role": "user", "content": [{"type": "image", "image": "sub/b.png"},
                                     {"type": "text", "text": "Compare the pictures."},
                                     {"type": "image", "image": str(first)}]},
    ], "answer": "same"}
    example = load_examples(write_jsonl(tmp_path / "d.jsonl", [row])).examples[0]
    assert example.question == "Compare the pictures."
    assert example.images == (str(second), str(first))
    assert example.system == "You are careful."


def test_authors_message_format_with_relative_image(tmp_path):
    image = make_png(tmp_path / "images" / "fig1.png")
    path = tmp_path / "train.json"
    path.write_text(json.dumps([authors_row("images/fig1.png")]), encoding="utf-8")
    example = load_examples(path).examples[0]
    assert example == Example("What is the area?", "12", images=(str(image),),
                              source={"file": str(path), "row": 0})


def test_image_root_and_file_uri_and_single_path(tmp_path):
    image = make_png(tmp_path / "root" / "x.png")
    rows = [{"question": "q", "answer": "1", "images": "x.png"},
            authors_row(f"file://{image}")]
    (tmp_path / "data").mkdir()
    path = write_jsonl(tmp_path / "data" / "d.jsonl", rows)
    examples = load_examples(path, DataConfig(image_root=str(tmp_path / "root"))).examples
    assert [e.images for e in examples] == [(str(image),), (str(image),)]


def test_message_images_come_first_and_repeats_collapse(tmp_path):
    shown = make_png(tmp_path / "shown.png")
    extra = make_png(tmp_path / "extra.png")
    row = authors_row("shown.png") | {"images": ["extra.png", str(shown)]}
    example = load_examples(write_jsonl(tmp_path / "d.jsonl", [row])).examples[0]
    assert example.images == (str(shown), str(extra))


def test_custom_field_names_and_unchecked_images(tmp_path):
    row = {"problem": "p", "solution": "s", "pics": ["missing.png"], "kind": "geo"}
    config = DataConfig(question_field="problem", answer_field="solution",
                        images_field="pics", task_field="kind", check_images=False)
    example = load_examples(write_jsonl(tmp_path / "d.jsonl", [row]), config).examples[0]
    assert (example.question, example.answer, example.task) == ("p", "s", "geo")
    assert example.images == (str(tmp_path / "missing.png"),)


# --------------------------------------------------------------------------- bad rows

BAD_ROWS = [
    ({"question": "q"}, "answer", "missing answer"),
    ({"question": "q", "answer": "  "}, "answer", "empty answer"),
    ({"question": "q", "answer": ["5"]}, "answer", "got list"),
    ({"question": "q", "answer": True}, "answer", "got bool"),
    ({"answer": "5"}, "question", "missing question"),
    ({"question": "", "answer": "5"}, "question", "empty question"),
    ({"question": 7, "answer": "5"}, "question", "got int"),
    ({"message": "[{'role': 'user'", "answer": "5"}, "message", "not valid JSON"),
    ({"message": json.dumps([{"role": "system", "content": "hi"}]), "answer": "5"},
     "message", "no user turn"),
    ({"message": json.dumps({"role": "user"}), "answer": "5"}, "message", "got dict"),
    ({"message": json.dumps([{"role": "assistant", "content": "5"}]), "answer": "5"},
     "message", "'assistant' is not supported"),
    ({"message": json.dumps([{"role": "user", "content": [{"type": "audio"}]}]),
      "answer": "5"}, "message", "expected blocks like"),
    (authors_row("nowhere/missing.png"), "message", "image file not found"),
    ({"question": "q", "answer": "5", "images": ["missing.png"]}, "images", "not found"),
    ({"question": "q", "answer": "5", "images": 3}, "images", "got int"),
    ({"question": "q", "answer": "5", "task": 1}, "task", "expected text"),
    (["q", "5"], None, "expected an object"),
]


@pytest.mark.parametrize(("row", "field", "reason"), BAD_ROWS,
                         ids=[f"{i}-{case[1]}" for i, case in enumerate(BAD_ROWS)])
def test_bad_row_names_file_line_and_field(tmp_path, row, field, reason):
    path = write_jsonl(tmp_path / "d.jsonl", [ROWS[0], row], blank_lines=True)
    error = load_error(path)
    assert (error.path, error.row, error.field) == (str(path), 3, field)
    assert reason in error.reason
    assert str(error).startswith(f"{path}, line 3")
    assert isinstance(error, ValueError)


def test_bad_row_in_json_reports_index(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([ROWS[0], ROWS[1], {"question": "q"}]), encoding="utf-8")
    error = load_error(path)
    assert (error.row, error.row_kind, error.field) == (2, "index", "answer")
    assert "row index 2, field 'answer'" in str(error)


COLUMNAR_BAD_ROWS = [
    ({"question": "q", "answer": None, "message": None, "images": None}, "answer", "missing answer"),
    ({"question": None, "answer": "5", "message": "[{'role': 'user'", "images": None},
     "message", "not valid JSON"),
    ({**authors_row("nowhere/missing.png"), "question": None, "images": None}, "message",
     "image file not found"),
    ({"question": "q", "answer": "5", "message": None, "images": ["missing.png"]}, "images",
     "image file not found"),
]


def write_columnar(folder: Path, fmt: str, rows: list[dict]) -> Path:
    """Rows as a Parquet file or a folder saved with `datasets.Dataset.save_to_disk`."""
    import datasets

    good = {"question": ROWS[0]["question"], "answer": ROWS[0]["answer"], "message": None,
            "images": None}
    table = datasets.Dataset.from_list(
        [good, good, *rows],
        features=datasets.Features({"question": datasets.Value("string"),
                                    "answer": datasets.Value("string"),
                                    "message": datasets.Value("string"),
                                    "images": datasets.Sequence(datasets.Value("string"))}),
    )
    if fmt == "parquet":
        path = folder / "d.parquet"
        table.to_parquet(str(path))
    else:
        path = folder / "saved"
        table.save_to_disk(str(path))
    return path


@pytest.mark.parametrize("fmt", ["parquet", "saved"])
@pytest.mark.parametrize(("row", "field", "reason"), COLUMNAR_BAD_ROWS,
                         ids=[case[1] + "-" + case[2].split()[0] for case in COLUMNAR_BAD_ROWS])
def test_bad_row_in_parquet_and_saved_dataset_names_path_index_and_field(
    tmp_path, fmt, row, field, reason
):
    path = write_columnar(tmp_path, fmt, [row])
    error = load_error(path)
    assert (error.path, error.row, error.row_kind, error.field) == (str(path), 2, "index", field)
    assert reason in error.reason
    assert str(error).startswith(f"{path}, row index 2, field '{field}': ")


@pytest.mark.parametrize("fmt", ["parquet", "saved"])
def test_skip_mode_counts_bad_rows_in_parquet_and_saved_dataset(tmp_path, fmt):
    path = write_columnar(tmp_path, fmt, [row for row, _, _ in COLUMNAR_BAD_ROWS])
    loaded = load_examples(path, DataConfig(skip_bad_rows=True))
    assert [e.source["row"] for e in loaded.examples] == [0, 1]
    assert [(b.path, b.row, b.field) for b in loaded.skipped] == [
        (str(path), 2 + i, field) for i, (_, field, _) in enumerate(COLUMNAR_BAD_ROWS)
    ]
    assert "loaded 2 examples, skipped 4 bad rows" in loaded.summary()
    assert f"{path}, row index 3, field 'message': not valid JSON" in loaded.summary()


def test_unparsable_jsonl_line(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [ROWS[0], '{"question": "q", "answer":'])
    error = load_error(path)
    assert (error.row, error.field) == (2, None) and "not valid JSON" in error.reason


def test_bom_and_badly_encoded_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(ROWS[0]).encode() + b"\n\xff\xfe oops\n")
    error = load_error(path)
    assert (error.row, error.field) == (2, None) and "not UTF-8" in error.reason


def test_skip_mode_collects_bad_rows_with_reasons(tmp_path):
    rows = [ROWS[0], {"question": "q"}, "not json", ROWS[1], {"answer": "1"}]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    loaded = load_examples(path, DataConfig(skip_bad_rows=True))
    assert [e.source["row"] for e in loaded.examples] == [1, 4]
    assert [(b.row, b.field) for b in loaded.skipped] == [(2, "answer"), (3, None),
                                                          (5, "question")]
    assert all(b.path == str(path) for b in loaded.skipped)
    assert "skipped 3 bad rows" in loaded.summary()
    assert "line 5, field 'question': missing question" in loaded.summary()


def test_all_rows_bad_is_an_error_even_when_skipping(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": "q"}, {"question": "r"}])
    error = load_error(path, DataConfig(skip_bad_rows=True))
    assert "all 2 rows are bad" in str(error) and "line 1" in str(error)


# ------------------------------------------------------------------------- bad files

@pytest.mark.parametrize(("name", "content", "reason"), [
    ("d.jsonl", "", "the file is empty"),
    ("d.jsonl", "\n  \n\n", "no rows"),
    ("d.json", "", "the file is empty"),
    ("d.json", "[]", "no rows"),
    ("d.json", '{"data": 5}', "without a list under 'data'"),
    ("d.json", '"text"', "got str"),
    ("d.json", '{"a": 1}\n{"a": 2}\n', "name the file .jsonl"),
    ("d.parquet", "not parquet at all", "not a readable Parquet file"),
])
def test_bad_files(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    error = load_error(path)
    assert error.path == str(path) and error.row is None and reason in error.reason


def test_unknown_extension_lists_supported_ones(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("question,answer\nq,1\n", encoding="utf-8")
    message = str(load_error(path))
    assert "'.csv'" in message
    assert all(suffix in message for suffix in SUPPORTED_SUFFIXES)


def test_missing_path_and_folder_that_is_not_a_dataset(tmp_path):
    assert "no such file" in load_error(tmp_path / "absent.jsonl").reason
    (tmp_path / "folder").mkdir()
    assert "save_to_disk" in load_error(tmp_path / "folder").reason


def test_dataset_error_survives_pickling(tmp_path):
    error = load_error(write_jsonl(tmp_path / "d.jsonl", [{"question": "q"}]))
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.row, copy.field, str(copy)) == (error.path, 1, "answer", str(error))


@pytest.mark.parametrize("kwargs", [
    {"answer_format": "boxed"},
    {"question_field": ""},
    {"answer_field": "question"},
    {"skip_bad_rows": "yes"},
    {"split": ""},
])
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        DataConfig(**kwargs)


# ------------------------------------------------------------------------------ GSM8K

@pytest.mark.parametrize(("solution", "final"), [
    ("3 + 4 = 7\n#### 7", "7"),
    ("He earns 1,000 + 600\n#### 1,600", "1600"),
    ("#### -3.5", "-3.5"),
    ("a #### b\n#### 2", "2"),
    ("#### 3/4", "3/4"),
    ("no marker 42", None),
    ("reasoning ####   ", None),
])
def test_gsm8k_final_answer(solution, final):
    assert gsm8k_final_answer(solution) == final


def test_gsm8k_format_without_marker_is_a_bad_answer(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": "q", "answer": "it is 4"}])
    error = load_error(path, DataConfig(answer_format="gsm8k"))
    assert error.field == "answer" and "####" in error.reason


def test_gsm8k_reduction_on_real_rows(tmp_path, gsm8k_test):
    head = gsm8k_test.read_text(encoding="utf-8").splitlines()[:5]
    path = write_jsonl(tmp_path / "head.jsonl", head)
    raw = load_examples(path).examples
    reduced = load_examples(path, DataConfig(answer_format="gsm8k")).examples
    assert reduced[0].answer == "18"  # Janet's ducks
    for before, after in zip(raw, reduced):
        assert before.answer.endswith("#### " + after.answer)
        assert after.question == before.question


def test_whole_gsm8k_test_set_loads_quickly(gsm8k_test):
    start = time.perf_counter()
    loaded = load_examples(gsm8k_test, DataConfig(answer_format="gsm8k"))
    elapsed = time.perf_counter() - start
    assert len(loaded.examples) == 1319 and loaded.skipped == []
    assert all(e.answer.lstrip("-").replace(".", "", 1).isdigit() for e in loaded.examples)
    assert loaded.examples[-1].source == {"file": str(gsm8k_test), "row": 1319}
    assert elapsed < 2.0


# ----------------------------------------------------------------- recycled-item files

def test_examples_jsonl_round_trip(tmp_path):
    examples = [
        Example("Is 2+2=4? ✓", "Yes", images=("/a.png", "/b.png"), task="pointwise",
                system="Judge.", source={"group": 3, "rollouts": [0, 5], "mode": "cot"}),
        Example("plain", "7"),
    ]
    path = tmp_path / "pool" / "items.jsonl"
    assert examples_to_jsonl(examples, path) == 2
    assert read_examples_jsonl(path) == examples
    assert not (tmp_path / "pool" / "items.jsonl.partial").exists()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.builds(Example, question=st.text(), answer=st.text(),
                          images=st.lists(st.text(), max_size=2).map(tuple),
                          system=st.none() | st.text()), max_size=4))
def test_examples_jsonl_round_trip_any_text(tmp_path_factory, examples):
    path = tmp_path_factory.mktemp("pool") / "items.jsonl"
    examples_to_jsonl(examples, path)
    assert read_examples_jsonl(path) == examples


def test_failed_write_leaves_no_partial_file(tmp_path):
    path = tmp_path / "items.jsonl"
    with pytest.raises(TypeError):
        examples_to_jsonl([Example("q", "a", source={"bad": object()})], path)
    assert list(tmp_path.iterdir()) == []


def test_read_examples_jsonl_rejects_wrong_types(tmp_path):
    path = write_jsonl(tmp_path / "items.jsonl",
                       [Example("q", "a").to_dict(), {"question": None, "answer": "a"}])
    with pytest.raises(DatasetError) as caught:
        read_examples_jsonl(path)
    assert (caught.value.row, caught.value.field) == (2, "question")
    path.write_text("", encoding="utf-8")
    assert read_examples_jsonl(path) == []


def test_rows_without_answers_are_open_rows_only_where_labels_are_optional(tmp_path):
    rows = [ROWS[0], {"question": "Write a poem."}, {"question": "Q?", "answer": "7", "task": "open"},
            {"question": "Say hi.", "answer": ""}]
    path = write_jsonl(tmp_path / "mixed.jsonl", rows)
    loaded = load_examples(path, labels="optional").examples
    assert [(e.task, e.answer) for e in loaded] == [("policy", "5"), ("open", ""), ("open", ""), ("open", "")]
    # without self-judged rewards a missing answer is a bad row naming file, line and field, and the way out
    error = load_error(path)
    assert (error.row, error.field) == (2, "answer") and "spark.self_reward" in error.reason
    assert str(error).startswith(f"{path}, line 2, field 'answer': missing answer")
    open_row = write_jsonl(tmp_path / "open.jsonl", [ROWS[0], rows[2]])
    error = load_error(open_row)
    assert (error.row, error.field) == (2, "task") and "spark.self_reward" in error.reason
    # a row of another task still needs its answer; a file of unlabeled prompts has no answers at all
    other = write_jsonl(tmp_path / "other.jsonl", [{"question": "q", "task": "trivia"}])
    with pytest.raises(DatasetError, match="missing answer"):
        load_examples(other, labels="optional")
    ignored = load_examples(write_jsonl(tmp_path / "u.jsonl", ROWS), labels="ignored").examples
    assert [(e.task, e.answer) for e in ignored] == [("open", ""), ("open", "")]
    with pytest.raises(ValueError, match="labels"):
        load_examples(path, labels="maybe")
