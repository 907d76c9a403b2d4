"""The published benchmark formats: every loader on its fixture (tests/fixtures/benchmarks,
written by make_fixtures.py), embedded images decoded once, rows that do not fit, best-of-k
scoring with RewardBench 2's Ties rule, per-subset summaries and `sparkrl eval` runs (VL-RewardBench
pairs with their images)."""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
from pathlib import Path

import pytest

from sparkrl import choices
from sparkrl.benchmark_formats import IMAGE_CACHE_DIR, READERS
from sparkrl.benchmarks import (
    PUBLISHED_FORMATS,
    BenchmarkError,
    BestOfItem,
    PairwiseItem,
    bestof_correct,
    bestof_credit,
    load_items,
    parse_data_spec,
    ties_score,
)
from sparkrl.cli import main
from sparkrl.evaluation import EvalConfig, evaluate
from sparkrl.inference.strategies import StrategySettings
from sparkrl.rows import Example
from sparkrl.verification import verify_math

FIXTURES = Path(__file__).parent / "fixtures" / "benchmarks"
FILES = {
    "mathvista": "mathvista/testmini.json",
    "mathverse": "mathverse/testmini.json",
    "mathvision": "mathvision/test.jsonl",
    "wemath": "wemath/testmini.json",
    "dynamath": "dynamath/sample.jsonl",
    "logicvista": "logicvista/dataset.json",
    "mmk12": "mmk12/test.parquet",
    "math500": "math500/test.jsonl",
    "spark-eval": "spark-eval/benchmark_combine.json",
    "vl-rewardbench": "vl-rewardbench/test.parquet",
    "rewardbench2": "rewardbench2/test.jsonl",
}
COUNTS = {"mathvista": 4, "mathverse": 2, "mathvision": 3, "wemath": 1, "dynamath": 3, "logicvista": 3,
          "mmk12": 2, "math500": 2, "spark-eval": 2, "vl-rewardbench": 2, "rewardbench2": 3}
ITEM_TYPES = {"reasoning": Example, "pairwise": PairwiseItem, "bestof": BestOfItem}


def load(fmt: str, tmp_path: Path, **kwargs) -> list:
    return load_items(PUBLISHED_FORMATS[fmt], f"{fmt}:{FIXTURES / FILES[fmt]}", image_cache=tmp_path / "cache",
                      **kwargs)


def right(response: str, example: Example) -> bool:
    return verify_math(response, example.answer).correct


def test_every_published_format_has_a_reader_and_a_fixture():
    assert set(READERS) == set(PUBLISHED_FORMATS) == set(FILES)
    for fmt in PUBLISHED_FORMATS:
        assert parse_data_spec(f"{fmt}:x.json") == (fmt, "x.json")


@pytest.mark.parametrize("fmt", list(FILES))
def test_each_format_loads_its_fixture(fmt, tmp_path):
    items = load(fmt, tmp_path)
    assert len(items) == COUNTS[fmt]
    assert all(isinstance(item, ITEM_TYPES[PUBLISHED_FORMATS[fmt]]) for item in items)
    for item in items:
        assert all(Path(image).is_absolute() and Path(image).is_file() for image in item.images)
        if isinstance(item, Example):
            assert item.source["format"] == fmt and item.source["id"]
            json.dumps(item.to_dict())


# --------------------------------------------------------------------------- reasoning formats


def test_mathvista_choices_precision_units_and_subsets(tmp_path):
    multi, decimal, integer, text = load("mathvista", tmp_path)
    assert multi.question.endswith("Choices:\nA. 3 cm\nB. 4 cm\nC. 5 cm")
    assert [right(r, multi) for r in (r"\boxed{B}", r"\boxed{4 cm}", r"\boxed{A}")] == [True, True, False]
    assert multi.images == (str((FIXTURES / "mathvista/images/1.png").absolute()),)
    assert multi.source == {"format": "mathvista", "file": str(FIXTURES / FILES["mathvista"]), "row": 0, "id": "1",
                            "subset": "geometry problem solving"}
    assert decimal.question.endswith("2 decimal places.")
    assert [right(r, decimal) for r in (r"\boxed{1.45 cm^2}", r"\boxed{1.449}", r"\boxed{1.4}")] == [True, True, False]
    assert integer.question.endswith("an integer.") and right(r"\boxed{7}", integer)
    assert text.answer == "red" and right(r"\boxed{red}", text)


def test_mathvista_parquet_images_are_decoded_once_into_the_cache(tmp_path):
    data = tmp_path / "data" / "testmini.parquet"
    data.parent.mkdir()
    shutil.copy(FIXTURES / "mathvista/testmini.parquet", data)
    first, second = load_items("reasoning", f"mathvista:{data}")  # default cache: beside the data
    (image,) = first.images
    assert Path(image).parent == data.parent / IMAGE_CACHE_DIR
    assert Path(image).name == hashlib.sha256(Path(image).read_bytes()).hexdigest() + ".png"
    assert second.images == first.images  # the same bytes in two rows: one file
    stamp = Path(image).stat().st_mtime_ns
    again = load_items("reasoning", f"mathvista:{data}")
    assert again == [first, second] and Path(image).stat().st_mtime_ns == stamp
    assert [p.name for p in (data.parent / IMAGE_CACHE_DIR).iterdir()] == [Path(image).name]
    assert right(r"\boxed{blue}", first) and right(r"\boxed{2.5}", second)
    elsewhere = load_items("reasoning", f"mathvista:{data}", image_cache=tmp_path / "elsewhere")
    assert Path(elsewhere[0].images[0]).parent == tmp_path / "elsewhere"


def test_mathverse_letters_options_from_the_text_and_vision_only_rows(tmp_path):
    multi, vision_only = load("mathverse", tmp_path)
    assert choices.decode(multi.answer) == choices.ChoiceAnswer(frozenset("B"), ("40°", "50°", "60°", "70°"))
    assert right(r"\boxed{B}", multi) and right(r"\boxed{50°}", multi) and not right(r"\boxed{C}", multi)
    assert vision_only.question.startswith("According to the question shown in the image")
    assert vision_only.answer == "3" and vision_only.source["subset"] == "Vision Only"


def test_mathvision_options_and_free_form(tmp_path):
    options, letters_only, free = load("mathvision", tmp_path)
    assert options.question.endswith("A. circle\nB. square\nC. star")
    assert right(r"\boxed{C}", options) and right(r"\boxed{star}", options)
    assert letters_only.question.endswith("Choices: A, B, C, D, E") and right(r"\boxed{D}", letters_only)
    assert free.answer == "12" and free.source["subset"] == "counting"


def test_wemath_splits_its_option_string(tmp_path):
    (row,) = load("wemath", tmp_path)
    assert row.question == "Find angle A.\nChoices:\nA. 40°\nB. 50°\nC. 60°\nD. 70°\nE. No correct answer"
    assert right(r"\boxed{C}", row) and right(r"\boxed{60°}", row) and not right(r"\boxed{E}", row)


def test_dynamath_answer_types(tmp_path):
    multi, decimal, text = load("dynamath", tmp_path)
    assert right(r"\boxed{B}", multi) and right(r"\boxed{g}", multi)
    assert right(r"\boxed{0.3334}", decimal) and not right(r"\boxed{0.335}", decimal)
    assert text.answer == "triangle"
    assert [e.source["subset"] for e in (multi, decimal, text)] == ["graph theory", "algebra", "plane geometry"]


def test_logicvista_keyed_rows_images_folder_and_multi_letter_answers(tmp_path):
    single, multi, number = load("logicvista", tmp_path)
    assert [e.source["id"] for e in (single, multi, number)] == ["v1_0", "v1_1", "v1_2"]
    assert single.images == (str((FIXTURES / "logicvista/images/v1_0.png").absolute()),)
    assert right(r"\boxed{C}", single)
    assert right(r"\boxed{C, A}", multi) and right(r"\boxed{AC}", multi) and not right(r"\boxed{A}", multi)
    assert number.answer == "3" and right(r"\boxed{3}", number)
    assert [e.source["subset"] for e in (single, multi, number)] == ["inductive", "inductive", "deductive"]


def test_mmk12_math500_and_spark_eval_rows(tmp_path):
    latex, _ = load("mmk12", tmp_path)
    assert latex.answer == "$\\frac{1}{2}$" and latex.source["subset"] == "math"
    assert Path(latex.images[0]).parent == tmp_path / "cache"
    first, second = load("math500", tmp_path)
    assert (first.question, first.answer, first.images) == ("What is $1+1$?", "2", ())
    assert second.source["subset"] == "Algebra" and second.source["id"] == "test/algebra/2.json"
    with_image, text_only = load("spark-eval", tmp_path)
    assert with_image.source["subset"] == "mathvista" and len(with_image.images) == 1
    assert text_only.images == () and text_only.answer == "6"


# --------------------------------------------------------------------------- judging formats


def test_vl_rewardbench_pairs_follow_the_human_ranking(tmp_path):
    first, second = load("vl-rewardbench", tmp_path)
    assert (first.response_a, first.label, first.subset) == ("It is red.", "A", "RLAIF-V")
    assert (second.label, second.subset) == ("B", "MathVerse")
    assert second.swapped().subset == "MathVerse" and second.to_dict()["subset"] == "MathVerse"
    assert first.images == second.images and Path(first.images[0]).parent == tmp_path / "cache"


def test_rewardbench2_best_of_k_items_shuffle_per_seed(tmp_path):
    plain, ref, tied = load("rewardbench2", tmp_path)
    assert (plain.subset, plain.item_id, len(plain.responses)) == ("Factuality", "11", 4)
    assert [plain.responses[i] for i in plain.correct] == ["Paris."]
    assert sorted(tied.responses[i] for i in tied.correct) == ["Blue", "Red", "Yellow"]
    assert (ref.item_id, tied.item_id, tied.subset) == ("ref:0", "tied:0", "Ties")
    assert load("rewardbench2", tmp_path) == [plain, ref, tied]
    orders = {load("rewardbench2", tmp_path, seed=s)[0].responses for s in range(8)}
    assert len(orders) > 1
    assert plain.to_dict() == {"question": "What is the capital of France?", "responses": list(plain.responses),
                               "correct": list(plain.correct), "subset": "Factuality", "item_id": "11"}


def test_bestof_correct_and_credit():
    assert bestof_correct([0.9, 0.1, 0.2, 0.3], [0])
    assert not bestof_correct([0.9, 0.9, 0.2, 0.3], [0])  # a tie at the top is wrong
    assert bestof_correct([0.8, 0.9, 0.1, 0.7], [0, 1])
    assert not bestof_correct([0.8, 0.9, 0.85, 0.7], [0, 1])
    assert bestof_credit([0.9, 0.9, 0.2, 0.3], [1]) == 0.5
    assert bestof_credit([0.9, 0.1, 0.2, 0.3], [0]) == 1.0 and bestof_credit([0.1, 0.9, 0.2, 0.3], [0]) == 0.0
    with pytest.raises(ValueError):
        bestof_correct([1.0, 0.0], [0, 1])
    with pytest.raises(ValueError):
        bestof_credit([1.0, 0.0, 0.5], [0, 1])


def test_ties_score_as_published(tmp_path):
    _, ref, tied = load("rewardbench2", tmp_path)

    def scored(item: BestOfItem, by_text: dict[str, float]) -> list[float]:
        return [by_text[text] for text in item.responses]

    ref_scores = scored(ref, {"Red": 3.0, "Purple": 1.0, "Green": 0.0})  # right, gap 2
    good = scored(tied, {"Red": 5.0, "Blue": 4.5, "Yellow": 4.0, "Green": 1.0, "Purple": 0.0})  # spread 1, gap 3
    assert ties_score([ref, tied], [ref_scores, good]) == pytest.approx(0.3 + 0.3 + 0.2 + 0.2 + 0.01 * math.tanh(1.0))
    bad = scored(tied, {"Red": 5.0, "Blue": 4.5, "Yellow": 4.0, "Green": 1.0, "Purple": 4.2})  # gap -0.2
    assert ties_score([ref, tied], [ref_scores, bad]) == pytest.approx(0.3 + 0.01 * math.tanh(-1.2))
    with pytest.raises(ValueError, match="ref and tied"):
        ties_score([ref], [ref_scores])


# --------------------------------------------------------------------------- rows that do not fit


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def bad_cases(tmp_path: Path) -> list[tuple[str, str, str]]:
    mathvision = write(tmp_path / "mv.jsonl", json.dumps({"id": "1", "question": "q", "options": [], "answer": "1"})
                       + "\n" + json.dumps({"id": "2", "question": "q", "options": []}) + "\n")
    mathverse = write(tmp_path / "mverse.json", json.dumps([{"question": "q", "answer": "A", "question_type": "mcq"}]))
    logicvista = write(tmp_path / "lv.json", json.dumps({"v1_0": {"imagename": "missing.png", "question": "q",
                                                                  "answer": "A"}}))
    mathvista = write(tmp_path / "mvista.json", json.dumps({"1": {"pid": "1", "question": "q", "choices": ["x", "y"],
                                                                  "answer": "z", "question_type": "multi_choice"}}))
    precision = write(tmp_path / "prec.json", json.dumps([{"pid": "2", "question": "q", "answer": "1.5",
                                                           "question_type": "free_form", "answer_type": "float"}]))
    rewardbench = write(tmp_path / "rb.jsonl", json.dumps({"id": "1", "prompt": "p", "chosen": ["a"],
                                                           "rejected": ["b"], "num_correct": 2, "subset": "Math"}))
    return [
        (f"mathvision:{mathvision}", "line 2", "answer"),
        (f"mathverse:{mathverse}", "row index 0", "question_type"),
        (f"logicvista:{logicvista}", "row 'v1_0'", "imagename"),
        (f"mathvista:{mathvista}", "row '1'", "answer"),
        (f"mathvista:{precision}", "row index 0", "precision"),
        (f"rewardbench2:{rewardbench}", "line 1", "num_correct"),
    ]


def test_rows_that_do_not_fit_name_the_file_the_row_and_the_field(tmp_path):
    for spec, row, field in bad_cases(tmp_path):
        fmt, path = parse_data_spec(spec)
        with pytest.raises(BenchmarkError) as caught:
            load_items(PUBLISHED_FORMATS[fmt], spec, image_cache=tmp_path / "cache")
        message = str(caught.value)
        assert message.startswith(f"{path}, {row}, field '{field}': ") and "\n" not in message, message


def test_parquet_row_that_does_not_fit(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "vl.parquet"
    pq.write_table(pa.Table.from_pylist([{"id": "1", "query": "q", "response": ["a", "b"], "human_ranking": [0, 0]}]),
                   path)
    with pytest.raises(BenchmarkError, match=rf"^{path}, row index 0, field 'human_ranking': expected one response"):
        load_items("pairwise", f"vl-rewardbench:{path}")


def test_formats_hold_one_kind_of_item(tmp_path):
    spec = f"math500:{FIXTURES / FILES['math500']}"
    with pytest.raises(BenchmarkError, match="holds reasoning items, not pairwise items"):
        load_items("pairwise", spec)
    with pytest.raises(BenchmarkError, match="rewardbench2:"):
        load_items("bestof", str(FIXTURES / FILES["math500"]))
    with pytest.raises(BenchmarkError, match="no reasoning items"):
        load_items("reasoning", f"math500:{write(tmp_path / 'empty.json', '[]')}")


# --------------------------------------------------------------------------- evaluation


def test_evaluation_grades_choices_and_reports_per_subset(scripted, tmp_path):
    items = load("mathvista", tmp_path)
    replies = {"What is the length": r"\boxed{4 cm}", "What is the area": r"\boxed{1.449}",
               "How many bars": r"\boxed{8}", "Which colour": r"\boxed{red}"}

    def reply(content, i, params) -> str:  # image questions arrive as [image blocks..., text block]
        text = content if isinstance(content, str) else content[-1]["text"]
        return next(v for k, v in replies.items() if text.startswith(k))

    backend = scripted(reply)
    config = EvalConfig(kind="reasoning", settings=StrategySettings(), show_progress=False)
    summary = evaluate(items, backend, config, tmp_path / "out")
    stats = summary["strategies"]["single"]
    assert stats["accuracy"] == 0.75
    assert stats["per_subset"] == {"figure question answering": {"accuracy": 0.5, "n": 2},
                                   "geometry problem solving": {"accuracy": 1.0, "n": 2}}
    assert "per_subset" not in (tmp_path / "out" / "summary.md").read_text()


def test_sparkrl_eval_pairwise_on_vl_rewardbench_sends_images_and_scores_subsets(scripted, tmp_path, monkeypatch):
    def sees_red(content, i, params) -> str:  # the fixture's image is red
        text = content[-1]["text"]
        assert [part["type"] for part in content] == ["image_url", "text"]
        red, blue = (re.search(rf"\b{colour}\b", text).start() for colour in ("red", "blue"))
        return r"\boxed{A}" if red < blue else r"\boxed{B}"

    backend = scripted(sees_red)
    monkeypatch.setattr("sparkrl.commands.evaluate.build_backend", lambda args: backend)
    out, cache = tmp_path / "out", tmp_path / "cache"
    argv = ["eval", "pairwise", "--model", "m", "--data", f"vl-rewardbench:{FIXTURES / FILES['vl-rewardbench']}",
            "--image-cache", str(cache), "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    assert [len(texts) for texts, _ in backend.calls] == [4]  # two pairs, both orders
    summary = json.loads((out / "summary.json").read_text())["strategies"]["single"]
    assert summary["accuracy"] == 1.0 and summary["position_consistency"] == 1.0
    assert summary["per_subset"] == {"MathVerse": {"accuracy": 1.0, "n": 1}, "RLAIF-V": {"accuracy": 1.0, "n": 1}}
    assert [p.suffix for p in cache.iterdir()] == [".png"]
    assert not (FIXTURES / "vl-rewardbench" / IMAGE_CACHE_DIR).exists()


def test_sparkrl_eval_runs_a_published_format_end_to_end(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["eval", "reasoning", "--model", str(tiny_model_dir), "--data", f"math500:{FIXTURES / FILES['math500']}",
            "--out", str(out), "--max-new-tokens", "4", "--no-progress"]
    assert main(argv) == 0
    assert "single: accuracy" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n"] == 2
    assert set(summary["strategies"]["single"]["per_subset"]) == {"Algebra", "Prealgebra"}


@pytest.fixture(scope="module")
def tiny_vl_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image demo's tiny LLaVA, untrained: enough to run every image format end to end."""
    import torch

    from sparkrl.tiny_vl.model import build_tiny_vl_model, build_vl_processor

    folder = tmp_path_factory.mktemp("tiny-vl")
    torch.manual_seed(0)
    processor = build_vl_processor()
    build_tiny_vl_model(processor, seed=0).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


SUBSETS = {"mathvista": True, "mathverse": True, "mathvision": True, "wemath": False, "dynamath": True,
           "logicvista": True, "mmk12": True, "spark-eval": True, "vl-rewardbench": True}


@pytest.mark.parametrize("fmt", sorted(SUBSETS))
def test_every_image_format_runs_end_to_end_on_the_tiny_vl_model(fmt, tiny_vl_model_dir, tmp_path, capsys):
    """`sparkrl eval` on each image fixture in its published schema, with the demo's tiny image
    model (untrained, so its answers are noise): summary.json has n, accuracy and, where the
    benchmark has subsets, per-subset figures."""
    out = tmp_path / "out"
    kind = PUBLISHED_FORMATS[fmt]
    argv = ["eval", kind, "--model", str(tiny_vl_model_dir), "--data", f"{fmt}:{FIXTURES / FILES[fmt]}",
            "--out", str(out), "--max-new-tokens", "4", "--judge-max-new-tokens", "4", "--no-progress",
            "--image-cache", str(tmp_path / "cache"), "--templates", "tiny"]
    assert main(argv) == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n"] == COUNTS[fmt] and 0.0 <= summary["accuracy"] <= 1.0
    assert ("per_subset" in summary["strategies"]["single"]) == SUBSETS[fmt]
