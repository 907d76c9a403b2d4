"""Evaluation items and loaders for real benchmark formats.

Three kinds of item, one per evaluation kind:
- reasoning: an `Example` (question and ground-truth answer);
- pointwise: a question, one response and whether it is correct (`Yes`/`No`);
- pairwise: a question, two responses and the letter of the better one (`A`/`B`).
Judge items, like examples, may carry the paths of the images their question refers to.

Formats, chosen with a `FORMAT:PATH` data spec (a bare path is the generic format):
- `gsm8k:` GSM8K test JSONL (`question`, `answer` with the final answer after `####`);
- `gsm8k-solutions:` the GSM8K model-solutions JSONL (`question`, `ground_truth`, and four
  solver keys each `{"is_correct", "solution"}`), as pointwise or pairwise judging items;
- generic: reasoning files in any format `sparkrl.data` reads; pointwise JSONL rows
  `question`, `response`, and `label` (Yes/No/true/false) or `correct` (bool); pairwise JSONL
  rows `question`, `response_a`, `response_b`, `label` (`A`, `B`, `A>B` or `B>A`).

GSM8K-solutions rows whose solution has no extractable final answer (a few truncated
generations) are left out: judges are shown final answers only.

Random choices (which solution a pointwise item shows, which pair and which order a pairwise
item uses) come from a `random.Random` seeded by (seed, row), so a `--limit` prefix of a set
is the same prefix whatever the limit.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparkrl.rows import Example
from sparkrl.verification import extract_final_answer

GSM8K_SOLVERS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")
FORMATS = ("gsm8k", "gsm8k-solutions")
KINDS = ("reasoning", "pointwise", "pairwise")


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
    """images: as for `PointwiseItem`."""

    question: str
    response_a: str
    response_b: str
    label: str
    images: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.label not in ("A", "B"):
            raise ValueError(f"PairwiseItem.label must be 'A' or 'B', got {self.label!r}")

    def swapped(self) -> PairwiseItem:
        """The same pair shown in the other order."""
        return PairwiseItem(self.question, self.response_b, self.response_a, "B" if self.label == "A" else "A",
                            self.images)

    def to_dict(self) -> dict[str, Any]:
        record = {"question": self.question, "response_a": self.response_a, "response_b": self.response_b,
                  "label": self.label}
        return _with_images(record, self.images)


Item = Example | PointwiseItem | PairwiseItem


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


def load_items(kind: str, spec: str, seed: int = 0) -> list[Item]:
    """The evaluation items of `kind` read from a data spec (see the module docstring)."""
    if kind not in KINDS:
        raise ValueError(f"unknown evaluation kind {kind!r}; choose from {KINDS}")
    fmt, path = parse_data_spec(spec)
    if not Path(path).exists():
        raise BenchmarkError(f"{path}: no such file")
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
