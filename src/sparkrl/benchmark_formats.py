"""Readers for the published files of the paper's benchmarks, one function per format.

Files are read as published: JSON Lines, JSON (a list of rows, `{"data": [...]}`, or rows
keyed by id as in MathVista's `annot_testmini.json` and LogicVista's `dataset.json`) and
Parquet. Fields read, by data-spec prefix (reasoning unless noted):

- `mathvista:` `pid`, `question`, `decoded_image` or `image`, `question_type` (`multi_choice`:
  `choices`, `answer` is the choice's text; `free_form`: `answer_type` `integer`/`float`
  (with `precision`)/`text`/`list`, `unit`), `metadata.task` as the subset;
- `mathverse:` `sample_index`, `question` (or `query_cot` when empty), `image`, `answer`,
  `question_type` (`multi-choice`: a letter; `free-form`), `problem_version` as the subset;
- `mathvision:` `id`, `question`, `options`, `decoded_image` or `image`, `answer` (a letter
  when there are options), `subject`;
- `wemath:` `ID`, `question`, `option` (`A. ...; B. ...`), `answer` (letter), `image_path`;
- `dynamath:` `id`, `question`, `decoded_image` or `image`, `ground_truth`, `answer_type`
  (`multiple choice`, `float`: within 0.001 as in the authors' grader, or text), `subject`;
- `logicvista:` `imagename` (in `images/` beside the file), `question`, `answer` (letters
  such as `A, C`, or a number), `skill` as the subset;
- `mmk12:` `id`, `question`, `image`, `answer` (LaTeX), `subject` when present;
- `math500:` `unique_id`, `problem`, `answer` (`solution` is not read), `subject`;
- `spark-eval:` the SPARK authors' evaluation rows `dataset` (the subset), `problem`,
  `answer`, `image_path` (a path or a list);
- `vl-rewardbench:` (pairwise) `id`, `query`, `response` (two), `image`, `human_ranking`
  (the lower rank is preferred), `query_source` as the subset;
- `rewardbench2:` (best-of-k) `id`, `prompt`, `chosen`, `rejected`, `num_correct`, `subset`.

Images are paths relative to the data file, or bytes embedded in the row (`{"bytes": ...,
"path": ...}`, as Parquet image columns store them), which are decoded once into a cache
folder (`sparkrl-images/` beside the data file, or `image_cache`) under the SHA-256 of their
content, and reused from there.

Multiple-choice questions show their options as `A. text` lines; their ground truth is a
`sparkrl.choices` structured answer, so that the letter or the option's text both grade
right. Choices of ours: MathVista's and MathVerse's `query` prompts are not used (the
evaluation appends its own answer-format suffix); MathVista float and integer questions get a
one-line hint with the decimals asked for, as its `query` carries one; best-of-k responses
are shuffled with a seeded `random.Random`, since RewardBench 2 lists the chosen first.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sparkrl import choices
from sparkrl.checks import is_number
from sparkrl.benchmarks import BenchmarkError, BestOfItem, Item, PairwiseItem
from sparkrl.rows import Example
from sparkrl.verification import as_number, normalize_answer

IMAGE_CACHE_DIR = "sparkrl-images"
_MAGIC = ((b"\x89PNG", ".png"), (b"\xff\xd8", ".jpg"), (b"GIF8", ".gif"), (b"BM", ".bmp"),
          (b"II*\x00", ".tif"), (b"MM\x00*", ".tif"))


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or (isinstance(value, float) and math.isnan(value))


# --------------------------------------------------------------------------- images


class ImageCache:
    """Embedded images as files named by the SHA-256 of their bytes, written once."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def save(self, data: bytes, name: str) -> str:
        suffix = next((s for magic, s in _MAGIC if data.startswith(magic)), None)
        if suffix is None:
            suffix = ".webp" if data[:4] == b"RIFF" and data[8:12] == b"WEBP" else Path(name).suffix.lower()
        target = self.folder / f"{hashlib.sha256(data).hexdigest()}{suffix or '.img'}"
        if target.is_file():
            return str(target)
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(data)
            os.replace(partial, target)  # concurrent writers of the same content write the same bytes
        except OSError as err:
            partial.unlink(missing_ok=True)
            raise BenchmarkError(f"{self.folder}: cannot write decoded images ({err}); "
                                 "choose a writable folder with image_cache") from err
        return str(target)


# --------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class _Row:
    """One row of a benchmark file, with errors that name the file, the row and the field."""

    path: Path
    where: str  # "line 3", "row index 2" or "row 'v1_0'"
    position: int  # the line or index, for seeded choices
    key: str | None  # the row's key in a JSON file of rows keyed by id
    fields: Mapping[str, Any]
    cache: ImageCache

    def error(self, field: str, reason: str) -> BenchmarkError:
        return BenchmarkError(f"{self.path}, {self.where}, field '{field}': {reason}")

    def text(self, field: str) -> str:
        """A required text (numbers are accepted as their text)."""
        value = self.fields.get(field)
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) or _blank(value):
            raise self.error(field, f"expected a non-empty string, got {_type_name(value)}")
        text = str(value).strip()
        if not text:
            raise self.error(field, "expected a non-empty string, got an empty one")
        return text

    def optional(self, field: str) -> str:
        return "" if _blank(self.fields.get(field)) else self.text(field)

    def strings(self, field: str, count: int | None = None) -> list[str]:
        value = self.fields.get(field)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(field, f"expected a list of strings, got {_type_name(value)}")
        if count is not None and len(value) != count:
            raise self.error(field, f"expected {count} strings, got {len(value)}")
        return value

    def optional_list(self, field: str) -> list[str]:
        return [] if _blank(self.fields.get(field)) else self.strings(field)

    def ident(self, field: str) -> str:
        return self.optional(field) or self.key or str(self.position)

    def images(self, *fields: str, folders: tuple[str, ...] = ("",)) -> tuple[str, ...]:
        """The files of the first of `fields` that holds images (paths are looked up in
        `folders` beside the data file), or () when none does."""
        for field in fields:
            value = self.fields.get(field)
            if not _blank(value):
                items = value if isinstance(value, list) else [value]
                return tuple(self._image(item, field, folders) for item in items)
        return ()

    def _image(self, item: Any, field: str, folders: tuple[str, ...]) -> str:
        if isinstance(item, Mapping):
            data = item.get("bytes")
            if isinstance(data, (bytes, bytearray)) and data:
                return self.cache.save(bytes(data), str(item.get("path") or ""))
            item = item.get("path")
        if not isinstance(item, str) or not item.strip():
            raise self.error(field, "expected an image path, a list of paths or {bytes, path}, "
                                    f"got {_type_name(item)}")
        raw = Path(item[len("file://"):] if item.startswith("file://") else item)
        candidates = [raw] if raw.is_absolute() else [self.path.parent / folder / raw for folder in folders]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise self.error(field, f"image file not found: {candidates[0].absolute()}")
        return str(found.absolute())

    def source(self, fmt: str, ident: str, subset: str = "") -> dict[str, Any]:
        record = {"format": fmt, "file": str(self.path), "row": self.position, "id": ident}
        return record | ({"subset": subset} if subset else {})


def _records(path: Path) -> Iterator[tuple[str, int, str | None, Any]]:
    """(where, position, key, record) for each row of a JSON Lines, JSON or Parquet file."""
    if path.suffix.lower() != ".json":
        from sparkrl.data import ROW_LINE, DataConfig, DatasetError, open_rows

        try:
            rows, row_kind = open_rows(path, DataConfig())
        except DatasetError as err:
            raise BenchmarkError(str(err)) from None
        label = "line" if row_kind == ROW_LINE else "row index"
        return ((f"{label} {number}", number, None, record) for number, record in rows)
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BenchmarkError(f"{path}: not a readable JSON file ({err})") from None
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        document = document["data"]
    if isinstance(document, list):
        return ((f"row index {index}", index, None, row) for index, row in enumerate(document))
    if isinstance(document, dict):
        return ((f"row {key!r}", index, str(key), row) for index, (key, row) in enumerate(document.items()))
    raise BenchmarkError(f"{path}: expected a list of rows or rows keyed by id, got {_type_name(document)}")


def _rows(path: Path, cache: ImageCache) -> Iterator[_Row]:
    for where, position, key, record in _records(path):
        if not isinstance(record, Mapping):
            # A JSON Lines line that does not parse comes as sparkrl.data's problem, with a reason.
            reason = getattr(record, "reason", None) or f"expected an object with fields, got {_type_name(record)}"
            raise BenchmarkError(f"{path}, {where}: {reason}")
        yield _Row(path, where, position, key, record, cache)


def load_published(fmt: str, path: Path, seed: int, image_cache: str | Path | None) -> list[Item]:
    """Every row of a published benchmark file as an item (see the module docstring)."""
    cache = ImageCache(Path(image_cache) if image_cache else path.parent / IMAGE_CACHE_DIR)
    reader = READERS[fmt]
    return [reader(row, seed) for row in _rows(path, cache)]


# --------------------------------------------------------------------------- answers


def _number(row: _Row, field: str, value: str) -> str:
    if as_number(normalize_answer(value)) is None:
        raise row.error(field, f"expected a number, got {value!r}")
    return value


def _letters(row: _Row, field: str, options: tuple[str, ...] = ()) -> frozenset[str]:
    letters = choices.read_letters(row.text(field), len(options) or None)
    if letters is None:
        allowed = f"A-{choices.LETTERS[len(options) - 1]}" if options else "A-Z"
        raise row.error(field, f"expected option letter(s) {allowed}, got {row.text(field)!r}")
    return letters


def _choice(letters: frozenset[str], options: tuple[str, ...]) -> str:
    """The gold of a multiple-choice row; options whose letters do not cover the answer (read
    from a question's text) are dropped, and the answer is graded by its letters only."""
    if options and not letters <= set(choices.LETTERS[: len(options)]):
        options = ()
    return choices.encode(choices.ChoiceAnswer(letters, options))


def _with_options(question: str, options: tuple[str, ...] | list[str]) -> str:
    return f"{question}\n{choices.option_lines(tuple(options))}" if options else question


# --------------------------------------------------------------------------- reasoning formats


def _mathvista(row: _Row, seed: int) -> Example:
    question, answer = row.text("question"), row.text("answer")
    question_type = row.text("question_type")
    if question_type == "multi_choice":
        options = tuple(row.strings("choices"))
        if answer not in options:
            raise row.error("answer", f"{answer!r} is not one of the choices {list(options)}")
        gold = _choice(frozenset(choices.LETTERS[options.index(answer)]), options)
        question = _with_options(question, options)
    elif question_type == "free_form":
        gold, hint = _mathvista_free_form(row, answer)
        question = f"{question}\n{hint}" if hint else question
    else:
        raise row.error("question_type", f"expected multi_choice or free_form, got {question_type!r}")
    metadata = row.fields.get("metadata")
    task = metadata.get("task") if isinstance(metadata, Mapping) else None
    return Example(question, gold, row.images("decoded_image", "image"),
                   source=row.source("mathvista", row.ident("pid"), str(task or "")))


def _mathvista_free_form(row: _Row, answer: str) -> tuple[str, str]:
    """The gold of a free-form MathVista row and the hint its question gets."""
    answer_type, unit = row.text("answer_type"), row.optional("unit")
    if answer_type == "integer":
        gold = choices.NumberAnswer(_number(row, "answer", answer), unit=unit)
        return choices.encode(gold), "Give the answer as an integer."
    if answer_type == "float":
        places = _decimals(row, "precision")
        gold = choices.NumberAnswer(_number(row, "answer", answer), precision=places, unit=unit)
        return choices.encode(gold), f"Give the answer as a number with {places} decimal place{'s' * (places != 1)}."
    if answer_type in ("text", "list"):
        return answer, ""
    raise row.error("answer_type", f"expected integer, float, text or list, got {answer_type!r}")


def _decimals(row: _Row, field: str) -> int:
    value = row.fields.get(field)
    if not is_number(value) or not math.isfinite(value) \
            or value != int(value) or value < 0:
        raise row.error(field, f"expected a whole number of decimals, got {value!r}")
    return int(value)


def _mathverse(row: _Row, seed: int) -> Example:
    question = row.optional("question") or row.text("query_cot")
    question_type = row.text("question_type")
    if question_type == "multi-choice":
        gold = _choice(_letters(row, "answer"), choices.options_in_text(question))
    elif question_type == "free-form":
        gold = row.text("answer")
    else:
        raise row.error("question_type", f"expected multi-choice or free-form, got {question_type!r}")
    return Example(question, gold, row.images("image"),
                   source=row.source("mathverse", row.ident("sample_index"), row.optional("problem_version")))


def _mathvision(row: _Row, seed: int) -> Example:
    question, options = row.text("question"), tuple(row.optional_list("options"))
    gold = _choice(_letters(row, "answer", options), options) if options else row.text("answer")
    return Example(_with_options(question, options), gold, row.images("decoded_image", "image"),
                   source=row.source("mathvision", row.ident("id"), row.optional("subject")))


def _wemath(row: _Row, seed: int) -> Example:
    written = row.text("option")
    options = choices.split_options(written)
    question = _with_options(row.text("question"), options) if options else f"{row.text('question')}\n{written}"
    return Example(question, _choice(_letters(row, "answer", options), options), row.images("image_path"),
                   source=row.source("wemath", row.ident("ID")))


def _dynamath(row: _Row, seed: int) -> Example:
    question, truth, answer_type = row.text("question"), row.text("ground_truth"), row.text("answer_type")
    if answer_type == "multiple choice":
        gold = _choice(_letters(row, "ground_truth"), choices.options_in_text(question))
    elif answer_type == "float":
        gold = choices.encode(choices.NumberAnswer(_number(row, "ground_truth", truth), tolerance=0.001))
    else:
        gold = truth
    return Example(question, gold, row.images("decoded_image", "image"),
                   source=row.source("dynamath", row.ident("id"), row.optional("subject")))


def _logicvista(row: _Row, seed: int) -> Example:
    question, answer = row.text("question"), row.text("answer")
    letters = choices.read_letters(answer)
    gold = _choice(letters, choices.options_in_text(question)) if letters else answer
    skills = row.fields.get("skill")
    subset = "+".join(skills) if isinstance(skills, list) and all(isinstance(s, str) for s in skills) else ""
    return Example(question, gold, row.images("imagename", folders=("images", "")),
                   source=row.source("logicvista", row.key or row.text("imagename"), subset))


def _mmk12(row: _Row, seed: int) -> Example:
    return Example(row.text("question"), row.text("answer"), row.images("image"),
                   source=row.source("mmk12", row.ident("id"), row.optional("subject")))


def _math500(row: _Row, seed: int) -> Example:
    return Example(row.text("problem"), row.text("answer"),
                   source=row.source("math500", row.ident("unique_id"), row.optional("subject")))


def _spark_eval(row: _Row, seed: int) -> Example:
    return Example(row.text("problem"), row.text("answer"), row.images("image_path"),
                   source=row.source("spark-eval", row.ident("id"), row.text("dataset")))


# --------------------------------------------------------------------------- judging formats


def _vl_rewardbench(row: _Row, seed: int) -> PairwiseItem:
    first, second = row.strings("response", 2)
    ranking = row.fields.get("human_ranking")
    if not (isinstance(ranking, list) and len(ranking) == 2 and all(isinstance(r, (int, float)) for r in ranking)):
        raise row.error("human_ranking", f"expected two ranks such as [0, 1], got {ranking!r}")
    if ranking[0] == ranking[1]:
        raise row.error("human_ranking", f"expected one response ranked above the other, got {ranking!r}")
    return PairwiseItem(row.text("query"), first, second, "A" if ranking[0] < ranking[1] else "B",
                        row.images("image"), row.optional("query_source"))


def _rewardbench2(row: _Row, seed: int) -> BestOfItem:
    chosen, rejected = row.strings("chosen"), row.strings("rejected")
    if not chosen or not rejected:
        raise row.error("chosen" if not chosen else "rejected", "expected at least one response")
    declared = row.fields.get("num_correct")
    if declared is not None and declared != len(chosen):
        raise row.error("num_correct", f"says {declared!r} but 'chosen' holds {len(chosen)} responses")
    order = list(range(len(chosen) + len(rejected)))
    random.Random(f"{seed}:{row.position}").shuffle(order)
    responses = [(chosen + rejected)[i] for i in order]
    correct = sorted(order.index(i) for i in range(len(chosen)))
    return BestOfItem(row.text("prompt"), tuple(responses), tuple(correct), row.text("subset"), row.ident("id"))


READERS: Mapping[str, Callable[[_Row, int], Item]] = MappingProxyType({
    "mathvista": _mathvista,
    "mathverse": _mathverse,
    "mathvision": _mathvision,
    "wemath": _wemath,
    "dynamath": _dynamath,
    "logicvista": _logicvista,
    "mmk12": _mmk12,
    "math500": _math500,
    "spark-eval": _spark_eval,
    "vl-rewardbench": _vl_rewardbench,
    "rewardbench2": _rewardbench2,
})
