"""Supervised warm start of the tiny vision-language model, under the text demo's rule.

Same design as `sparkrl.tiny.warmstart` (see docs/tiny.md): the model learns the solution
format and what judge and reflection replies look like, but nothing about judging.

- policy targets come from the imperfect teacher (`task.teacher_solution`, miscounting cells);
- a judge target is the text demo's `follows` reply: a careless checker's tally of the cells
  (it also counts each shape of another colour with probability `ShapeTaskConfig.judge_slip`:
  `task.careless_tally`, written `xxox=3`, not in the policy's notation), each candidate marked
  against that count (`A: 2~3- B: 3~3+`), then the verdict that count implies, never the
  truth; a judge improves only by counting more carefully, which is what SPARK's RL rewards.
  (Until 2026-12-03 the judge target was the teacher's worked count, the candidates copied and
  a verdict drawn at random; the image judge did not learn under it: docs/vision.md);
- a reflection target is a fresh teacher solution that never looks at the wrong attempt.

Every prompt carries the problem's image (rendered in memory; no files) as its first content
part, as TRL's `prepare_multimodal_messages` places dataset images, and is rendered with the
processor's chat template, which writes the image after the text
(`sparkrl.tiny_vl.model.CHAT_TEMPLATE`). Judge and reflection prompts use the tiny template pool.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, ProcessorMixin

from sparkrl.rows import TASK_PAIRWISE, TASK_POINTWISE, TASK_POLICY, TASK_REFLECTION
from sparkrl.templates import TemplateSet, pairwise_prompt, pointwise_prompt, reflection_prompt
from sparkrl.tiny.task import boxed_answer
from sparkrl.tiny.templates import TINY_TEMPLATES
from sparkrl.tiny.warmstart import (
    SupervisedPair,
    WarmStartConfig,
    WarmStartData,
    WarmStartReport,
    checked_reply,
    fit,
    followed_verdict,
)
from sparkrl.tiny_vl.task import (
    ShapeProblem,
    ShapeTaskConfig,
    careless_tally,
    generate_problems,
    render,
    split_capacity,
    teacher_solution,
    wrong_solution,
)


@dataclass(frozen=True)
class ImagePair:
    """A warm-start pair and the problem whose image its prompt shows."""

    pair: SupervisedPair
    problem: ShapeProblem


def _judge_pair(task: str, prompt: str, candidates: Sequence[tuple[str, str]], problem: ShapeProblem,
                rng: random.Random, config: ShapeTaskConfig, labels: Sequence[str], right: str) -> SupervisedPair:
    # The text demo's "follows" replies: a careless count, each candidate marked against it,
    # and the verdict that count implies; `right` is never consulted.
    count = careless_tally(problem, rng, config.judge_slip)
    verdict = followed_verdict(candidates, boxed_answer(count), labels, rng)
    return SupervisedPair(prompt, checked_reply(count, candidates, verdict), task, verdict, right)


def make_pair(kind: str, problem: ShapeProblem, rng: random.Random, config: ShapeTaskConfig,
              templates: TemplateSet) -> SupervisedPair:
    """One supervised pair of `kind` (policy, pointwise, pairwise or reflection) for `problem`."""
    slip = config.slip
    if kind == TASK_POLICY:
        target = teacher_solution(problem, rng, slip)
        return SupervisedPair(problem.question, target, TASK_POLICY, boxed_answer(target), problem.answer)
    if kind == TASK_POINTWISE:
        is_right = rng.random() < 0.5
        candidate = problem.answer if is_right else boxed_answer(wrong_solution(problem, rng))
        # Yes/No only: the demo's recycling does not use the option-letter variant either.
        prompt = pointwise_prompt(problem.question, candidate, rng, templates=templates)
        return _judge_pair(kind, prompt, [("", candidate)], problem, rng, config, ("Yes", "No"),
                           "Yes" if is_right else "No")
    if kind == TASK_PAIRWISE:
        wrong = boxed_answer(wrong_solution(problem, rng))
        right = rng.choice(("A", "B"))
        a, b = (problem.answer, wrong) if right == "A" else (wrong, problem.answer)
        prompt = pairwise_prompt(problem.question, a, b, rng, templates=templates)
        return _judge_pair(kind, prompt, [("A", a), ("B", b)], problem, rng, config, ("A", "B"), right)
    if kind == TASK_REFLECTION:
        attempt = wrong_solution(problem, rng)
        mode = rng.choice(("cot", "answer"))
        shown = attempt if mode == "cot" else boxed_answer(attempt)
        prompt = reflection_prompt(problem.question, shown, mode, rng, templates=templates)
        target = teacher_solution(problem, rng, slip)  # independent of `attempt`
        return SupervisedPair(prompt, target, kind, boxed_answer(target), problem.answer)
    raise ValueError(f"unknown pair kind {kind!r}")


def build_image_pairs(
    task: ShapeTaskConfig, data: WarmStartData, seed: int, *, templates: TemplateSet = TINY_TEMPLATES
) -> list[ImagePair]:
    """The shuffled warm-start pairs, all from train-split problems."""
    rng = random.Random(f"tiny-vl-warmstart/{seed}")
    pool = generate_problems(task, "train", min(data.total, split_capacity(task, "train")), seed)
    problems = itertools.cycle(pool)
    counts = {TASK_POLICY: data.policy, TASK_POINTWISE: data.pointwise, TASK_PAIRWISE: data.pairwise,
              TASK_REFLECTION: data.reflection}
    pairs = []
    for kind, count in counts.items():
        for _ in range(count):
            problem = next(problems)
            pairs.append(ImagePair(make_pair(kind, problem, rng, task, templates), problem))
    rng.shuffle(pairs)
    return pairs


def encode_image_pair(processor: ProcessorMixin, item: ImagePair, cell: int) -> tuple[list[int], int, torch.Tensor]:
    """Token ids of image prompt + completion + eos, where the completion starts, and pixel values."""
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": item.pair.prompt}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    prompt = processor(images=[render(item.problem, cell)], text=[text], return_tensors="pt")
    prompt_ids = prompt["input_ids"][0].tolist()
    tokenizer = processor.tokenizer
    completion_ids = tokenizer(item.pair.completion, add_special_tokens=False)["input_ids"]
    return prompt_ids + completion_ids + [tokenizer.eos_token_id], len(prompt_ids), prompt["pixel_values"][0]


def collate(encoded: Sequence[tuple[list[int], int, torch.Tensor]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch with labels only on replies, and one image per row."""
    width = max(len(ids) for ids, _, _ in encoded)
    input_ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(encoded), width), dtype=torch.long)
    labels = torch.full((len(encoded), width), -100, dtype=torch.long)
    for row, (ids, start, _) in enumerate(encoded):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention_mask[row, : len(ids)] = 1
        labels[row, start : len(ids)] = torch.tensor(ids[start:])
    pixel_values = torch.stack([pixels for _, _, pixels in encoded])
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels, "pixel_values": pixel_values}


def warm_start_vl(
    model: PreTrainedModel,
    processor: ProcessorMixin,
    pairs: Sequence[ImagePair],
    config: WarmStartConfig,
    cell: int,
    seed: int,
    progress: Callable[[str], None] | None = print,
) -> WarmStartReport:
    """Train `model` in place on `pairs` with the text warm start's loop (`sparkrl.tiny.warmstart.fit`)."""
    encoded = [encode_image_pair(processor, item, cell) for item in pairs]
    pad = processor.tokenizer.pad_token_id
    return fit(model, encoded, [len(ids) for ids, _, _ in encoded], lambda rows: collate(rows, pad), config, seed,
               progress, label="vl warm start")
