"""What a modality gives the demo: a warm-started model, training data, held-out items, settings.

The demo pipeline (`sparkrl.demo.pipeline`) is the same for text and images; a `Workload`
supplies the parts that differ. `TextWorkload` is the embedded column-addition task of
`sparkrl.tiny`; `sparkrl.tiny_vl.workload.ImageWorkload` is its image counterpart.

Held-out judge items are built from the task's own correct and plausibly wrong solutions,
never from answers of a model being evaluated, and their labels are exactly balanced, so a
judge that always gives one verdict scores 50%.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from sparkrl.benchmarks import PairwiseItem, PointwiseItem
from sparkrl.rows import TASK_PAIRWISE, TASK_POINTWISE, Example

Progress = Callable[[str], None]

# Warm starts packaged with sparkrl (`TextWorkload.shipped`), each a Hugging Face folder with
# its `warmstart.json` report and recipe, built by `sparkrl demo --build-warm-start`.
SHIPPED_ROOT = Path(__file__).parent / "warmstarts"
SHIPPED_WARM_STARTS = ("digit",)

# What a warm start's judge verdicts are, by judge style, as the demo's report states it.
JUDGE_VERDICTS: Mapping[str, str] = MappingProxyType({
    "random": "drawn at random, independent of whether any candidate is right",
    "follows": "what the judge's own worked answer implies, from a careless teacher that forgets {slip:.0%} of "
               "carries (never the truth)",
    "careless count": "what the judge's own count implies, from a careless teacher that also counts each shape of "
                      "another colour {slip:.0%} of the time (never the truth)",
})


class Workload(Protocol):
    """The modality-specific parts of the demo."""

    name: str  # "text" or "image"
    templates: str  # judge/reflection template set, as `sparkrl.templates.resolve_templates` reads it
    policy_steps: int  # policy-step budget of each RL run
    frozen: tuple[str, ...]  # parameter-name prefixes RL leaves alone (`model.freeze`)
    recycling: Mapping[str, Any]  # `spark.recycling` settings of the SPARK runs
    schedule: str  # `spark.schedule` of the SPARK runs (`sparkrl.schedule`)

    def warm_start(self, folder: Path, seed: int, progress: Progress) -> dict[str, Any]:
        """Build the tiny model from scratch, warm-start it and save it (with its tokenizer or
        processor) as a Hugging Face folder; return a JSON-able report."""
        ...

    def write_train_data(self, folder: Path, n: int, seed: int) -> Path:
        """Write `n` train-split policy rows under `folder`; return the file `sparkrl train` reads."""
        ...

    def reasoning_items(self, folder: Path, n: int, seed: int) -> list[Example]:
        """`n` held-out (test-split) problems."""
        ...

    def judge_items(self, folder: Path, kind: str, n: int, seed: int) -> list[PointwiseItem] | list[PairwiseItem]:
        """`n` held-out judge items of `kind` with exactly balanced labels."""
        ...

    def grpo_settings(self) -> dict[str, Any]:
        """TRL `GRPOConfig` fields of this workload's RL runs."""
        ...

    def warm_start_recipe(self, seed: int) -> dict[str, Any]:
        """Everything that shapes the warm start (and nothing that shapes RL), JSON-able: a
        shipped warm start is used only by a workload whose recipe is the one it was built with."""
        ...

    def shipped_warm_start(self) -> Path | None:
        """The packaged warm-start folder this workload starts from instead of building one, or None."""
        ...


# Recycling for workloads whose policy leaves few mixed groups, the only source of pairwise
# items: every mixed group gives a pairwise item (the authors: 30% pointwise instead) and every
# group may give a judge item (the authors: at most 0.5 per group).
PAIRWISE_RICH_RECYCLING: Mapping[str, Any] = MappingProxyType(
    {"letter_prob": 0.0, "mixed_pointwise_prob": 0.0, "judge_items_per_group": 1.0})


# `pairwise_both_orders` (each mixed group's pair at (A) and at (B)) on top of that; the cap of
# judge items per group must let both items of a pair through.
BOTH_ORDERS_RECYCLING: Mapping[str, Any] = MappingProxyType(
    {**PAIRWISE_RICH_RECYCLING, "pairwise_both_orders": True, "judge_items_per_group": 2.0})


def balanced_judge_items(kind: str, cases: Sequence[tuple[str, str, str, tuple[str, ...]]]) -> list[Any]:
    """Held-out judge items from (question, right solution, wrong solution, images) cases, the
    labels alternating so that they are exactly balanced (a one-verdict judge scores 50%)."""
    if kind not in (TASK_POINTWISE, TASK_PAIRWISE):
        raise ValueError(f"kind must be {TASK_POINTWISE!r} or {TASK_PAIRWISE!r}, got {kind!r}")
    items: list[Any] = []
    for index, (question, right, wrong, images) in enumerate(cases):
        first = index % 2 == 0
        if kind == TASK_POINTWISE:
            response, label = (right, "Yes") if first else (wrong, "No")
            items.append(PointwiseItem(question, response, label, images))
        else:
            a, b = (right, wrong) if first else (wrong, right)
            items.append(PairwiseItem(question, a, b, "A" if first else "B", images))
    return items


def warm_started(
    folder: Path, seed: int, build: Callable[[], tuple[Any, Any]], train: Callable[[Any, Any], Any],
    frozen: Sequence[str] = (),
) -> dict[str, Any]:
    """The warm-start stage of every workload, text or image: seed torch, build the tokenizer
    (or processor) and the tiny model from scratch (`build`), freeze `frozen` parameter
    prefixes, run the supervised loop (`train(model, tokenizer)`, returning a
    `sparkrl.tiny.warmstart.WarmStartReport`), save both as one Hugging Face folder, and report."""
    import torch

    from sparkrl.models import freeze_parameters
    from sparkrl.tiny.model import parameter_count

    torch.manual_seed(seed)
    started = time.perf_counter()
    tokenizer, model = build()
    if frozen:
        freeze_parameters(model, frozen)
    report = train(model, tokenizer)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return {**asdict(report), "seconds_with_data": time.perf_counter() - started, "parameters": parameter_count(model)}


# The demo runs' learning rate unless a workload sets its own (the `one-bit` format: 5e-4).
DEMO_LEARNING_RATE = 3e-4


def demo_grpo_settings(
    quick: bool, max_completion_length: int, lr_schedule: str = "constant", beta: float = 0.0,
    learning_rate: float = DEMO_LEARNING_RATE,
) -> dict[str, Any]:
    """The GRPO settings every demo run shares (one optimizer step per round of 16 prompts x 8
    samples); a workload sets the completion length and may set the learning rate and its
    schedule (TRL's `lr_scheduler_type`) and the KL coefficient."""
    batch = 8 * (4 if quick else 16)
    return {
        "num_generations": 8,
        "generation_batch_size": batch,
        "per_device_train_batch_size": batch,
        "max_completion_length": max_completion_length,
        "learning_rate": learning_rate,
        "lr_scheduler_type": lr_schedule,
        "beta": beta,
        "temperature": 1.0,
        # TRL turns checkpointing on by default; a tiny model has memory to spare, so recomputing
        # activations in the backward pass would only cost time.
        "gradient_checkpointing": False,
    }


@dataclass(frozen=True)
class TextWorkload:
    """The embedded text task: column addition solved by a tiny Llama (see docs/tiny.md).

    quick: a smaller warm start and fewer RL steps, for tests (the claims are not expected to
    hold then).
    asked, explicit_carries, templates, judge_style: the task format (`sparkrl.tiny.task.TaskConfig`,
    the judge template set, how warm-start judge replies are written: `sparkrl.tiny.warmstart.build_pairs`);
    the defaults are the `sum` format, `TEXT_FORMATS` holds the demo's formats.
    digits, carry_slip, direct_answers, judge_slip, false_carry: the problems' size and the
    warm-start teacher (`TaskConfig`).
    max_completion_length: the RL runs' completion budget in tokens (a judge reply must fit).
    warm_start_steps: supervised warm-start steps (250 with `quick`).
    warm_start_data: `WarmStartData` sizes of the warm start (its defaults where not given).
    rl_steps: the policy-step budget of each RL run (4 with `quick`).
    learning_rate, lr_schedule, kl_beta: the RL learning rate, its schedule (TRL's
    `lr_scheduler_type`) and the KL coefficient to the warm start (TRL's `beta`) of both runs.
    recycling: the SPARK runs' `spark.recycling` settings.
    shipped: the name of a warm start packaged with sparkrl (`SHIPPED_WARM_STARTS`) that the
        demo copies instead of building one (never with `quick`); built once with
        `sparkrl demo --build-warm-start` (docs/demo.md).
    """

    quick: bool = False
    size: str = "micro"
    digits: int = 2
    carry_slip: float = 0.5
    asked: str = "sum"
    explicit_carries: bool = False
    direct_answers: bool = False
    judge_slip: float | None = None
    false_carry: float = 0.0
    max_completion_length: int = 48
    templates: str = "tiny"
    judge_style: str = "compare"
    warm_start_steps: int = 1000
    warm_start_data: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    rl_steps: int = 40
    learning_rate: float = DEMO_LEARNING_RATE
    lr_schedule: str = "constant"
    kl_beta: float = 0.0
    # Pointwise items use Yes/No only: the tiny model keeps one verdict vocabulary per judge kind.
    recycling: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({"letter_prob": 0.0}))
    shipped: str | None = None
    name: str = field(default="text", init=False)
    frozen: tuple[str, ...] = field(default=(), init=False)
    schedule: str = field(default="alternate", init=False)

    @property
    def policy_steps(self) -> int:
        return 4 if self.quick else self.rl_steps

    def _task(self) -> Any:
        from sparkrl.tiny.task import TaskConfig

        return TaskConfig(digits=self.digits, carry_slip=self.carry_slip, asked=self.asked,
                          explicit_carries=self.explicit_carries, direct_answers=self.direct_answers,
                          judge_slip=self.judge_slip, false_carry=self.false_carry)

    def _warm_start_plan(self) -> tuple[Any, Any, str]:
        from sparkrl.tiny import WarmStartConfig, WarmStartData

        data = (WarmStartData(policy=600, pointwise=150, pairwise=150, reflection=150) if self.quick
                else WarmStartData(**self.warm_start_data))
        steps = WarmStartConfig(steps=250 if self.quick else self.warm_start_steps, log_every=50 if self.quick else 100)
        return data, steps, "nano" if self.quick else self.size

    def warm_start(self, folder: Path, seed: int, progress: Progress) -> dict[str, Any]:
        from sparkrl.templates import resolve_templates
        from sparkrl.tiny import build_pairs, build_tiny_model, build_tokenizer, warm_start

        data, steps, size = self._warm_start_plan()

        def build() -> tuple[Any, Any]:
            tokenizer = build_tokenizer()
            return tokenizer, build_tiny_model(tokenizer, seed, size)

        def train(model: Any, tokenizer: Any) -> Any:
            pairs = build_pairs(self._task(), data, seed, templates=resolve_templates(self.templates),
                                judge_style=self.judge_style)
            return warm_start(model, tokenizer, pairs, steps, seed, progress=progress)

        verdicts = JUDGE_VERDICTS.get(self.judge_style, JUDGE_VERDICTS["random"]).format(slip=self._task().judge_slip)
        return {**warm_started(folder, seed, build, train), "size": size, "judge_verdicts": verdicts}

    def warm_start_recipe(self, seed: int) -> dict[str, Any]:
        data, steps, size = self._warm_start_plan()
        return {"modality": self.name, "seed": seed, "size": size, "task": asdict(self._task()), "templates": self.templates,
                "judge_style": self.judge_style, "data": asdict(data), "steps": asdict(steps)}

    def shipped_warm_start(self) -> Path | None:
        if self.shipped is None or self.quick:
            return None
        if self.shipped not in SHIPPED_WARM_STARTS:
            raise ValueError(f"shipped warm start must be one of {sorted(SHIPPED_WARM_STARTS)}, got {self.shipped!r}")
        return SHIPPED_ROOT / self.shipped

    def write_train_data(self, folder: Path, n: int, seed: int) -> Path:
        from sparkrl.data import examples_to_jsonl
        from sparkrl.tiny.task import generate_examples, split_capacity

        path = folder / "train.jsonl"
        task = self._task()
        examples_to_jsonl(generate_examples(task, "train", min(n, split_capacity(task, "train")), seed), path)
        return path

    def reasoning_items(self, folder: Path, n: int, seed: int) -> list[Example]:
        from sparkrl.tiny.task import generate_examples

        return generate_examples(self._task(), "test", n, seed)

    def judge_items(self, folder: Path, kind: str, n: int, seed: int) -> list[PointwiseItem] | list[PairwiseItem]:
        from sparkrl.tiny.task import correct_solution, generate_problems, wrong_solution

        rng = random.Random(f"demo-judge/{kind}/{seed}")
        problems = generate_problems(self._task(), "test", n, seed)
        return balanced_judge_items(kind, [(p.question, correct_solution(p), wrong_solution(p, rng), ()) for p in problems])

    def grpo_settings(self) -> dict[str, Any]:
        return demo_grpo_settings(self.quick, max_completion_length=self.max_completion_length, lr_schedule=self.lr_schedule,
                                  beta=self.kl_beta, learning_rate=self.learning_rate)


# The text formats of `sparkrl demo --format` (docs/demo.md):
# - "sum": the whole sum of two 2-digit numbers as the answer; judge replies copy the
#   candidates after the worked solution (`... \boxed{138} vs A: 138 B: 139 \boxed{A}`);
# - "one-bit": the parity of the sum's tens digit as the answer, every carry written, the
#   candidates on one line before the question, and judge replies that mark each candidate as
#   agreeing (`+`) or not (`-`) with the judge's own worked answer, right before a verdict that
#   the warm start draws at random (`... \boxed{1} A: 0- B: 1+\boxed{A}`); each mixed group's
#   pair is recycled in both orders; the warm start is long enough (2,000 steps) to learn the
#   marks on every seed; the RL learning rate starts at 5e-4 (at 3e-4 one seed of four had
#   not learnt to follow its marks by the end) and decays (cosine) so that the end of a run
#   stays steady, a strong KL term (0.3) to the warm start keeps what RL does not reward directly
#   (the judge's copies and marks, which share weights with the verdict) from drifting while the
#   verdict learns to follow them, and both runs get 240 policy steps (float32 rounds made them
#   affordable; with 160 the verdict had not learnt on two seeds of four: docs/demo.md).
# - "digit" (the default): the hundreds digit of a sum of two 3-digit numbers, one of ten
#   answers, which the policy states at once (`\boxed{6}`: it has to carry in one forward
#   pass, so plain GRPO climbs slowly and does not saturate); a judge works the question column
#   by column, writes its own answer beside each candidate with a mark (`A: 5~5+ B: 4~5-`), then
#   the verdict its own answer implies, as a careless checker that forgets 75% of carries would
#   ("follows", `sparkrl.tiny.warmstart.followed_verdict`); comparison drills teach the marks.
#   The policy and reflection teacher forgets half the carries and writes a carry where none is
#   due into 30% of the free columns (`false_carry`), so a wrong answer is one too low or one too
#   high and a revision has to work out which (with forgotten carries only, revisions learnt
#   "the shown answer plus one"); recycled rounds hold as many reflection items as judge items.
#   The warm start (5,000 steps, 7 min on 2 cores) ships with sparkrl (`SHIPPED_WARM_STARTS`).
#   Why each part: experiments/notes/digit-demo-2026-12.md.
DIGIT_FORMAT: Mapping[str, Any] = MappingProxyType({
    "digits": 3, "asked": "top", "explicit_carries": True, "direct_answers": True, "carry_slip": 0.5, "judge_slip": 0.75,
    "false_carry": 0.3,
    "templates": "tiny-fixed", "judge_style": "follows", "max_completion_length": 64,
    "recycling": MappingProxyType({**BOTH_ORDERS_RECYCLING, "mixed_pointwise_prob": 0.5, "max_judge_items": 8,
                                   "max_reflection_items": 8}),
    "warm_start_data": MappingProxyType({"policy": 40000, "pointwise": 40000, "pairwise": 40000, "reflection": 16000,
                                         "comparisons": 24000}),
    "learning_rate": 5e-4, "lr_schedule": "cosine", "kl_beta": 0.3, "warm_start_steps": 5000, "rl_steps": 120,
    "shipped": "digit",
})
TEXT_FORMATS: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "digit": DIGIT_FORMAT,
    "sum": MappingProxyType({}),
    "one-bit": MappingProxyType({"asked": "tens-parity", "explicit_carries": True, "templates": "tiny-fixed",
                                 "judge_style": "marks", "recycling": BOTH_ORDERS_RECYCLING,
                                 "learning_rate": 5e-4, "lr_schedule": "cosine", "kl_beta": 0.3, "warm_start_steps": 2000,
                                 "rl_steps": 240}),
})


def text_workload(text_format: str, quick: bool = False) -> TextWorkload:
    """The demo's text workload in one of `TEXT_FORMATS`."""
    if text_format not in TEXT_FORMATS:
        raise ValueError(f"text format must be one of {sorted(TEXT_FORMATS)}, got {text_format!r}")
    return TextWorkload(quick=quick, **TEXT_FORMATS[text_format])
