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
                                      "self_reflection_accuracy", "self_reflection_wrong_to_right",
                                      "self_reflection_right_to_wrong"}
    assert (out / "models" / "spark" / "processor_config.json").exists()
    assert (out / "report.md").exists()


def test_careless_image_judges_follow_their_own_count_never_the_truth():
    # The image counterpart of the text `follows` replies: a careless count (shapes of another
    # colour counted too), each candidate marked against it, the verdict that count implies.
    import random
    import re

    from sparkrl.tiny.task import boxed_answer
    from sparkrl.tiny.warmstart import WarmStartData
    from sparkrl.tiny_vl.task import ShapeTaskConfig, careless_tally, generate_problems
    from sparkrl.tiny_vl.warmstart import build_image_pairs

    task = ShapeTaskConfig()  # the careless judge teacher is the only one (judge_slip 0.6)
    assert task.judge_slip == ImageWorkload().judge_slip == 0.6
    with pytest.raises(ValueError, match="judge_slip"):
        ShapeTaskConfig(judge_slip=None)  # type: ignore[arg-type]  # the random-verdict teacher is gone
    problem = next(p for p in generate_problems(task, "train", 50, 0)
                   if any(c is not None and c[0] != p.colour for c in p.cells))
    rng = random.Random(0)
    counts = {boxed_answer(careless_tally(problem, rng, 1.0)) for _ in range(5)}
    assert counts == {str(sum(c is not None for c in problem.cells))}  # every shape, whatever its colour
    assert boxed_answer(careless_tally(problem, rng, 0.0)) == problem.answer
    pairs = [i.pair for i in build_image_pairs(task, WarmStartData(policy=0, pointwise=300, pairwise=300, reflection=0), 0)]
    for pair in pairs:
        # The judge tallies in its own notation (`xoox=2`), never in the policy's (`1+0+0+1=2`).
        assert re.match(r"[xo]{4}=\d \\boxed\{\d\} ", pair.completion), pair.completion
        own = boxed_answer(pair.completion[: pair.completion.index("} ") + 1])
        marks = re.findall(r"(\d)~(\d)([+-])", pair.completion)
        assert all(mine == own and mark == ("+" if shown == own else "-") for shown, mine, mark in marks)
        if pair.task == "pointwise":
            assert pair.label == ("Yes" if marks[0][2] == "+" else "No")
        assert pair.completion.endswith(f"\\boxed{{{pair.label}}}")
    # The careless teacher's verdicts agree with the truth no more often than chance.
    assert sum(p.label == p.correct for p in pairs) / len(pairs) < 0.55


def test_chat_template_writes_the_image_after_the_text_in_every_prompt():
    # TRL puts a row's image first; the tiny model reads the image at a fixed distance from the
    # reply only if it comes last, so a judge prompt and a policy prompt end the same way.
    from sparkrl.templates import pointwise_prompt
    from sparkrl.tiny_vl.model import IMAGE_TOKEN, build_vl_processor

    processor = build_vl_processor()
    question = "How many red shapes"
    ends = []
    for text in (question, pointwise_prompt(question, "2", templates=resolve_templates("tiny"))):
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
        rendered = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert rendered.count(IMAGE_TOKEN) == 1
        ends.append(rendered[rendered.index(question):])
    assert ends[0] == ends[1] == f"{question}{IMAGE_TOKEN}<eos><assistant>"


@pytest.mark.parametrize("field,value", [("slip", None), ("slip", 1.5), ("judge_slip", "0.6"), ("judge_slip", -0.1),
                                         ("slip", True), ("judge_slip", False)])
def test_shape_task_slips_must_be_probabilities(field, value):
    from sparkrl.tiny_vl.task import ShapeTaskConfig

    with pytest.raises(ValueError, match=rf"ShapeTaskConfig\.{field} must be a number in \[0, 1\]"):
        ShapeTaskConfig(**{field: value})
