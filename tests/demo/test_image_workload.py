"""The image workload of `sparkrl demo`: rendered train data, balanced held-out judge items with
images, a test split disjoint from training, and (slow) the quick image demo end to end."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from PIL import Image

from sparkrl.benchmarks import PairwiseItem, PointwiseItem
from sparkrl.data import load_examples
from sparkrl.evaluation import EvalConfig, probes_for
from sparkrl.inference import StrategySettings
from sparkrl.templates import resolve_templates
from sparkrl.tiny_vl.workload import ImageWorkload

WORKLOAD = ImageWorkload(quick=True)


def _problem(example):
    """What identifies a problem: its question and the pixels of its board."""
    with Image.open(example.images[0]) as image:
        return example.question, image.convert("RGB").tobytes()


def test_train_data_rows_name_rendered_images_that_exist(tmp_path):
    path = WORKLOAD.write_train_data(tmp_path, 40, seed=3)
    examples = load_examples(path).examples  # fails on a missing image file
    assert len(examples) == 40
    for example in examples:
        assert len(example.images) == 1
        with Image.open(example.images[0]) as image:
            assert image.size == (28, 28)
    assert len({_problem(e) for e in examples}) == 40


@pytest.mark.parametrize("kind, labels", [("pointwise", ("Yes", "No")), ("pairwise", ("A", "B"))])
def test_judge_items_are_balanced_and_carry_their_images(tmp_path, kind, labels):
    items = WORKLOAD.judge_items(tmp_path, kind, 30, seed=0)
    assert len(items) == 30
    assert Counter(item.label for item in items) == {labels[0]: 15, labels[1]: 15}
    assert all(isinstance(item, PointwiseItem if kind == "pointwise" else PairwiseItem) for item in items)
    assert all(len(item.images) == 1 and Image.open(item.images[0]).size == (28, 28) for item in items)
    assert len({Image.open(item.images[0]).tobytes() for item in items}) > 20  # one board per item
    # every probe the evaluation builds shows the item's image
    config = EvalConfig(kind=kind, settings=StrategySettings(templates=resolve_templates("tiny")), suffix="")
    for item in items:
        assert {probe.task.images for probe in probes_for(item, config)} == {item.images}


def test_judge_responses_are_the_tasks_own_right_and_wrong_solutions(tmp_path):
    from sparkrl.verification import extract_final_answer

    reasoning = WORKLOAD.reasoning_items(tmp_path, 10, seed=0)
    pointwise = WORKLOAD.judge_items(tmp_path, "pointwise", 10, seed=0)
    for example, item in zip(reasoning, pointwise):  # same held-out problems, in the same order
        assert item.question == example.question
        assert (extract_final_answer(item.response) == example.answer) == (item.label == "Yes")
    for item in WORKLOAD.judge_items(tmp_path, "pairwise", 10, seed=0):
        right, wrong = (item.response_a, item.response_b) if item.label == "A" else (item.response_b, item.response_a)
        assert extract_final_answer(right) != extract_final_answer(wrong)


def test_held_out_problems_never_appear_in_the_train_data(tmp_path):
    train = load_examples(WORKLOAD.write_train_data(tmp_path / "data", 2000, seed=0)).examples
    held_out = WORKLOAD.reasoning_items(tmp_path / "data", 200, seed=0)
    assert len(held_out) == 200
    assert all(len(example.images) == 1 for example in held_out)
    assert not {_problem(e) for e in train} & {_problem(e) for e in held_out}
    # the held-out images are the test boards, not files of the train set
    assert not {e.images[0] for e in train} & {e.images[0] for e in held_out}


@pytest.mark.slow
def test_quick_image_demo_writes_its_summary(tmp_path):
    """The whole quick image demo through the command line (about a minute on 2 cores)."""
    import subprocess
    import sys

    out = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "sparkrl", "demo", "--modality", "image", "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["modality"] == "image" and summary["quick"] is True
    for key in ("warmstart", "grpo", "spark", "wall_seconds", "policy_steps", "train_seconds", "warm_start", "curves"):
        assert key in summary
    for name in ("warmstart", "grpo", "spark"):
        assert set(summary[name]) == {"policy_accuracy", "judge_pointwise_accuracy", "judge_pairwise_accuracy",
                                      "self_reflection_accuracy"}
    assert (out / "models" / "spark" / "processor_config.json").exists()
    assert (out / "report.md").exists()
