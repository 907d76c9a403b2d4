"""Evaluation items and loaders for real benchmark formats.

Four kinds of item:
- reasoning: an `Example` (question and ground-truth answer);
- pointwise: a question, one response and whether it is correct (`Yes`/`No`);
- pairwise: a question, two responses and the letter of the better one (`A`/`B`);
- best-of-k (`BestOfItem`, RewardBench 2): a question, k responses and which are the chosen
  ones; `bestof_correct`, `bestof_credit` and `ties_score` score a judge's k scores
  (`sparkrl.bestof` has the judge produce them).
Judge items, like examples, may carry the paths of the images their question refers to.

Formats, chosen with a `FORMAT:PATH` data spec (a bare path is the generic format):
- `gsm8k:` GSM8K test JSONL (`question`, `answer` with the final answer after `####`);
- `gsm8k-solutions:` the GSM8K model-solutions JSONL (`question`, `ground_truth`, and four
  solver keys each `{"is_correct", "solution"}`), as pointwise or pairwise judging items;
- the published files of the paper's benchmarks (`PUBLISHED_FORMATS`; read by
  `sparkrl.benchmark_formats`, see its docstring for the fields of each);
- generic: reasoning files in any format `sparkrl.data` reads; pointwise JSONL rows
  `question`, `response`, and `label` (Yes/No/true/false) or `correct` (bool); pairwise JSONL
  rows `question`, `response_a`, `response_b`, `label` (`A`, `B`, `A>B` or `B>A`).

GSM8K-solutions rows whose solution has no extractable final answer (a few truncated
generations) are left out: judges are shown final answers only.

Random choices (which solution a pointwise item shows, which pair and which order a pairwise
item uses, the order of best-of-k responses) come from a `random.Random` seeded by (seed,
row), so a `--limit` prefix of a set is the same prefix whatever the limit.
"""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sparkrl.rows import Example
from sparkrl.verification import extract_final_answer

GSM8K_SOLVERS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")
# The kinds of item, each an evaluation kind: `load_items`, `sparkrl.evaluation` and the
# `sparkrl eval KIND` subcommands all take them from here.
KINDS = ("reasoning", "pointwise", "pairwise", "bestof")
# How `sparkrl.bestof` scores the k responses of a best-of-k item (its docstring says why
# pointwise is the default).
BESTOF_MODES = ("pointwise", "pairwise")
DEFAULT_BESTOF_MODE = "pointwise"
# The published benchmark files `sparkrl.benchmark_formats` reads, with the kind of item each holds.
PUBLISHED_FORMATS = MappingProxyType({
    "mathvista": "reasoning",
    "mathverse": "reasoning",
    "mathvision": "reasoning",
    "wemath": "reasoning",
    "dynamath": "reasoning",
    "logicvista": "reasoning",
    "mmk12": "reasoning",
    "math500": "reasoning",
    "spark-eval": "reasoning",
    "vl-rewardbench": "pairwise",
    "rewardbench2": "bestof",
})
FORMATS = ("gsm8k", "gsm8k-solutions", *PUBLISHED_FORMATS)


class BenchmarkError(ValueError):
    """A benchmark file that cannot be read; the message names the file, line and field."""


def _with_images(record: dict[str, Any], images: tuple[str, ...]) -> dict[str, Any]:
    # Only items that have images name them, so text items keep the record (and the item hash
    # that resumed evaluations check) they had before judge items could carry images.
    return {**record, "images": list(images)} if images else record


@dataclass(frozen=True)
class PointwiseItem:
    """images: image file paths the question refers to (shown to the judge before the text)."""

    question: str
    response: str
    label: str
    images: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.label not in ("Yes", "No"):
            raise ValueError(f"PointwiseItem.label must be 'Yes' or 'No', got {self.label!r}")

    def to_dict(self) -> dict[str, Any]:
        return _with_images({"question": self.question, "response": self.response, "label": self.label}, self.images)


@dataclass(frozen=True)
class PairwiseItem:
    """images: as for `PointwiseItem`. subset: the benchmark's subset, for per-subset accuracy."""

    question: str
    response_a: str
    response_b: str
    label: str
    images: tuple[str, ...] = ()
    subset: str = ""

    def __post_init__(self) -> None:
        if self.label not in ("A", "B"):
            raise ValueError(f"PairwiseItem.label must be 'A' or 'B', got {self.label!r}")

    def swapped(self) -> PairwiseItem:
        """The same pair shown in the other order."""
        return PairwiseItem(self.question, self.response_b, self.response_a, "B" if self.label == "A" else "A",
                            self.images, self.subset)

    def to_dict(self) -> dict[str, Any]:
        record = {"question": self.question, "response_a": self.response_a, "response_b": self.response_b,
                  "label": self.label}
        return _with_images(record | ({"subset": self.subset} if self.subset else {}), self.images)


@dataclass(frozen=True)
class BestOfItem:
    """A question and k responses, of which those at `correct` are the chosen ones.

    subset: the benchmark's subset (RewardBench 2: Factuality, Precise IF, Math, Safety,
        Focus, Ties). item_id: the row's id (RewardBench 2 Ties: `ref:N` or `tied:N`).
    """

    question: str
    responses: tuple[str, ...]
    correct: tuple[int, ...]
    subset: str
    item_id: str
    images: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "responses", tuple(self.responses))
        object.__setattr__(self, "correct", tuple(self.correct))
        _check_bestof(len(self.responses), self.correct)

    def to_dict(self) -> dict[str, Any]:
        record = {"question": self.question, "responses": list(self.responses), "correct": list(self.correct),
                  "subset": self.subset, "item_id": self.item_id}
        return _with_images(record, self.images)


Item = Example | PointwiseItem | PairwiseItem | BestOfItem


# --------------------------------------------------------------------------- best-of-k scoring


def _check_bestof(count: int, correct: Sequence[int]) -> None:
    if not correct or len(set(correct)) != len(correct) or not all(0 <= i < count for i in correct):
        raise ValueError(f"correct must be distinct indices of the {count} responses, got {list(correct)}")
    if len(correct) == count:
        raise ValueError(f"every one of the {count} responses is correct; nothing to rank them against")


def _split_scores(scores: Sequence[float], correct: Sequence[int]) -> tuple[list[float], list[float]]:
    _check_bestof(len(scores), correct)
    chosen = set(correct)
    return [s for i, s in enumerate(scores) if i in chosen], [s for i, s in enumerate(scores) if i not in chosen]


def bestof_correct(scores: Sequence[float], correct: Sequence[int]) -> bool:
    """Right when every chosen response scores strictly above every rejected one (RewardBench 2
    accuracy; a tie at the top is wrong here, see `bestof_credit` for the published tie rule)."""
    right, wrong = _split_scores(scores, correct)
    return min(right) > max(wrong)


def bestof_credit(scores: Sequence[float], correct: Sequence[int]) -> float:
    """RewardBench 2's credit for a row with one chosen response: 1/m when it shares the top
    score with m - 1 others, 0 below the top (`reroll_and_score_dataset` in
    github.com/allenai/reward-bench, rewardbench/utils.py)."""
    if len(correct) != 1:
        raise ValueError(f"bestof_credit scores rows with one chosen response, got {len(correct)}")
    right, wrong = _split_scores(scores, correct)
    top = max(right + wrong)
    return 1.0 / (1 + sum(s == top for s in wrong)) if right[0] == top else 0.0


def ties_score(items: Sequence[BestOfItem], scores: Sequence[Sequence[float]]) -> float:
    """The RewardBench 2 Ties score of a judge's scores, one list per item, as published
    (`process_single_model` in github.com/allenai/reward-bench, rewardbench/utils.py):

        0.30 tied accuracy + 0.30 ref accuracy + 0.20 correctness preferred
        + 0.20 correctness preferred (hard) + 0.01 margin score

    Items are `ref:N` (one correct answer) or `tied:N` (several) rows of prompt N. Accuracy:
    every correct response above every incorrect one. For the prompts with both rows, the gap
    between the worst correct and the best incorrect response (tied row; hard: the smaller of
    the tied and ref gaps) must exceed the spread among the tied row's correct responses; the
    margin score is the mean of tanh(hard gap / spread - 1), 0 where undefined.
    """
    if len(items) != len(scores):
        raise ValueError(f"{len(items)} items but {len(scores)} score lists")
    stats: dict[str, dict[str, tuple[bool, float | None, float]]] = defaultdict(dict)
    for item, row in zip(items, scores):
        kind, sep, prompt = item.item_id.partition(":")
        if not sep or kind not in ("ref", "tied"):
            raise ValueError(f"Ties item ids are 'ref:N' or 'tied:N', got {item.item_id!r}")
        right, wrong = _split_scores(row, item.correct)
        spread = max(right) - min(right) if len(right) > 1 else None
        stats[kind][prompt] = (min(right) > max(wrong), spread, min(right) - max(wrong))
    ref, tied = stats["ref"], stats["tied"]
    paired = sorted(set(ref) & set(tied))
    if not paired:
        raise ValueError("the Ties score needs ref and tied rows of the same prompts")
    if any(tied[p][1] is None for p in paired):
        raise ValueError("every tied row needs at least two correct responses")
    spreads = [float(tied[p][1]) for p in paired]  # type: ignore[arg-type]
    gaps = [tied[p][2] for p in paired]
    hard = [min(ref[p][2], tied[p][2]) for p in paired]
    accuracy = {kind: sum(s[0] for s in rows.values()) / len(rows) if rows else 0.0 for kind, rows in stats.items()}
    return (
        0.30 * accuracy.get("tied", 0.0)
        + 0.30 * accuracy.get("ref", 0.0)
        + 0.20 * sum(g > s for g, s in zip(gaps, spreads)) / len(paired)
        + 0.20 * sum(h > s for h, s in zip(hard, spreads)) / len(paired)
        + 0.01 * sum(_tanh_ratio(h, s) for h, s in zip(hard, spreads)) / len(paired)
    )


def _tanh_ratio(gap: float, spread: float) -> float:
    """tanh(gap / spread - 1) as numpy computes it: +-1 for a zero spread, 0 for 0 / 0."""
    if spread == 0:
        return 0.0 if gap == 0 else math.copysign(1.0, gap)
    return math.tanh(gap / spread - 1)


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """(line number, object) for each non-blank line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise BenchmarkError(f"{path}: cannot read: {err}") from err
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise BenchmarkError(f"{path}, line {number}: not valid JSON: {err.msg}") from err
        if not isinstance(row, dict):
            raise BenchmarkError(f"{path}, line {number}: expected a JSON object, got {type(row).__name__}")
        yield number, row


def _text(row: Mapping[str, Any], field: str, where: str) -> str:
    value = row.get(field)
    if not isinstance(value, str) or not value.strip():
        raise BenchmarkError(f"{where}, field '{field}': expected a non-empty string, got {value!r}")
    return value


def _nonempty(items: list[Any], path: Path, what: str) -> list[Any]:
    if not items:
        raise BenchmarkError(f"{path}: no {what} could be built from this file")
    return items


# --------------------------------------------------------------------------- GSM8K


def load_gsm8k(path: str | Path) -> list[Example]:
    """GSM8K test rows as reasoning examples (gold = the answer after `####`)."""
    from sparkrl.data import DataConfig, load_examples

    return load_examples(path, DataConfig(answer_format="gsm8k")).examples


def _gsm8k_solutions(path: Path) -> Iterator[tuple[int, str, list[str], list[str]]]:
    """(line, question, correct solutions, wrong solutions) per row; solutions without an
    extractable final answer (a few truncated ones) are left out."""
    for number, row in _jsonl_rows(path):
        where = f"{path}, line {number}"
        question = _text(row, "question", where)
        right, wrong = [], []
        for solver in GSM8K_SOLVERS:
            entry = row.get(solver)
            if not isinstance(entry, dict) or not isinstance(entry.get("is_correct"), bool):
                raise BenchmarkError(
                    f"{where}, field '{solver}': expected {{\"is_correct\": bool, \"solution\": str}}"
                )
            solution = _text(entry, "solution", f"{where}, field '{solver}'")
            if extract_final_answer(solution) is not None:  # judges are shown final answers only
                (right if entry["is_correct"] else wrong).append(solution)
        yield number, question, right, wrong


def _row_rng(seed: int, number: int) -> random.Random:
    return random.Random(f"{seed}:{number}")


def gsm8k_pointwise(path: str | Path, seed: int = 0) -> list[PointwiseItem]:
    """One item per question: a correct or a wrong solution, 50/50 where both exist."""
    items = []
    for number, question, right, wrong in _gsm8k_solutions(Path(path)):
        if not right and not wrong:
            continue
        rng = _row_rng(seed, number)
        show_right = bool(right) and (not wrong or rng.random() < 0.5)
        pool = right if show_right else wrong
        items.append(PointwiseItem(question, rng.choice(pool), "Yes" if show_right else "No"))
    return _nonempty(items, Path(path), "pointwise items")


def gsm8k_pairwise(path: str | Path, seed: int = 0) -> list[PairwiseItem]:
    """One item per question with both a correct and a wrong solution; the correct one is
    shown as A or B at random."""
    items = []
    for number, question, right, wrong in _gsm8k_solutions(Path(path)):
        if not right or not wrong:
            continue
        rng = _row_rng(seed, number)
        item = PairwiseItem(question, rng.choice(right), rng.choice(wrong), "A")
        items.append(item.swapped() if rng.random() < 0.5 else item)
    return _nonempty(items, Path(path), "pairwise items (no question has both a correct and a wrong solution)")


# --------------------------------------------------------------------------- generic JSONL

_YES_NO = {"yes": "Yes", "no": "No", "true": "Yes", "false": "No", "correct": "Yes", "incorrect": "No"}
_PAIR_LABELS = {"a": "A", "b": "B", "a>b": "A", "b>a": "B"}


def _pointwise_label(row: Mapping[str, Any], where: str) -> str:
    if "label" in row:
        label = _YES_NO.get(str(row["label"]).strip().lower())
        if label is None:
            raise BenchmarkError(
                f"{where}, field 'label': expected Yes/No (or true/false), got {row['label']!r}"
            )
        return label
    if isinstance(row.get("correct"), bool):
        return "Yes" if row["correct"] else "No"
    raise BenchmarkError(f"{where}: needs field 'label' (Yes/No) or 'correct' (true/false)")


def load_pointwise(path: str | Path) -> list[PointwiseItem]:
    source = Path(path)
    items = []
    for number, row in _jsonl_rows(source):
        where = f"{source}, line {number}"
        items.append(
            PointwiseItem(_text(row, "question", where), _text(row, "response", where), _pointwise_label(row, where))
        )
    return _nonempty(items, source, "pointwise items")


def load_pairwise(path: str | Path) -> list[PairwiseItem]:
    source = Path(path)
    items = []
    for number, row in _jsonl_rows(source):
        where = f"{source}, line {number}"
        label = _PAIR_LABELS.get(str(row.get("label", "")).replace(" ", "").lower())
        if label is None:
            raise BenchmarkError(
                f"{where}, field 'label': expected A, B, A>B or B>A, got {row.get('label')!r}"
            )
        items.append(
            PairwiseItem(
                _text(row, "question", where), _text(row, "response_a", where), _text(row, "response_b", where), label
            )
        )
    return _nonempty(items, source, "pairwise items")


# --------------------------------------------------------------------------- dispatch


def parse_data_spec(spec: str) -> tuple[str | None, str]:
    """`FORMAT:PATH` -> (format, path); a spec whose prefix is not a known format is a path."""
    head, sep, tail = spec.partition(":")
    if sep and head in FORMATS:
        return head, tail
    return None, spec


def load_items(kind: str, spec: str, seed: int = 0, *, image_cache: str | Path | None = None) -> list[Item]:
    """The items of `kind` (one of KINDS) read from a data spec (see the module docstring).

    image_cache: folder that images embedded in the published files are decoded into (by
    default `sparkrl-images/` beside the data file).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown evaluation kind {kind!r}; choose from {KINDS}")
    fmt, path = parse_data_spec(spec)
    if not Path(path).exists():
        raise BenchmarkError(f"{path}: no such file")
    if fmt in PUBLISHED_FORMATS:
        if PUBLISHED_FORMATS[fmt] != kind:
            raise BenchmarkError(f"format {fmt} holds {PUBLISHED_FORMATS[fmt]} items, not {kind} items")
        from sparkrl.benchmark_formats import load_published

        return _nonempty(load_published(fmt, Path(path), seed, image_cache), Path(path), f"{kind} items")
    if kind == "bestof":
        raise BenchmarkError(f"best-of-k items come from a published format: rewardbench2:{path}")
    if fmt == "gsm8k":
        if kind != "reasoning":
            raise BenchmarkError(
                f"format gsm8k holds reasoning items; for {kind} use gsm8k-solutions:{path}"
            )
        return list(load_gsm8k(path))
    if fmt == "gsm8k-solutions":
        if kind == "reasoning":
            raise BenchmarkError("format gsm8k-solutions holds judging items; for reasoning use gsm8k:PATH")
        return list(gsm8k_pointwise(path, seed) if kind == "pointwise" else gsm8k_pairwise(path, seed))
    if kind == "reasoning":
        from sparkrl.data import load_examples

        return list(load_examples(path).examples)
    return list(load_pointwise(path) if kind == "pointwise" else load_pairwise(path))
