"""Loading datasets into `Example` rows, with errors that point at the bad row.

Inputs: JSON Lines (streamed line by line), JSON (a list of objects, or {"data": [...]}),
Parquet (read in record batches), and folders written by Hugging Face `save_to_disk` (a
`Dataset`, or one split of a `DatasetDict`). A question is plain text or a list of chat
messages; the authors' released training files carry it as `message`, a JSON *string* of
chat messages whose user content mixes image and text entries, and rows with a string
`message` field are read that way without any option.

Every bad row is located by file, row and field. Rows are numbered by the 1-based line for
JSON Lines (so an editor jumps straight to it) and by the 0-based index for the other
formats; messages say which ("line 7" or "row index 6"). With `skip_bad_rows` the bad rows
are collected next to the examples instead of raised.

Rows without an answer, or with task `open`, are unlabeled prompts for self-judged rewards
(sparkrl.self_reward). Only `load_examples(..., labels="optional")` accepts them (training
does when `spark.self_reward` is set), as `open` examples with an empty answer; elsewhere they
are bad rows, so a forgotten answer never trains silently. `labels="ignored"` reads a file of
unlabeled prompts (`data.unlabeled`): every row is `open`, whatever its answer says.

Choices of ours, not the paper's: image paths are made absolute and checked at load time
(the authors' code fails mid-run on a missing image); GSM8K final answers lose their
thousands separators ("1,600" -> "1600") so that every verifier reads them as numbers;
assistant turns in a question are rejected, since the ground truth belongs in the answer field.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparkrl.rows import TASK_OPEN, TASK_POLICY, Example

SUPPORTED_SUFFIXES = (".jsonl", ".json", ".parquet")
ANSWER_FORMATS = ("raw", "gsm8k")
LABELS_REQUIRED, LABELS_OPTIONAL, LABELS_IGNORED = "required", "optional", "ignored"
LABEL_RULES = (LABELS_REQUIRED, LABELS_OPTIONAL, LABELS_IGNORED)
ROW_LINE = "line"
ROW_INDEX = "index"

# Rows converted to Python objects at a time from Parquet and Arrow-backed datasets: large
# enough to amortise the conversion, small enough that huge files never sit in memory twice.
_BATCH_ROWS = 1024
_GSM8K_MARKER = "####"
_GROUPED_NUMBER = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_FILE_URI = "file://"
_SELF_REWARD_HINT = "are trained with self-judged rewards only when spark.self_reward is set"


@dataclass(frozen=True)
class DataConfig:
    """Where a dataset keeps each part of a row, and how strict loading is.

    image_root: folder that relative image paths are resolved against; by default the
        folder holding the data file (or the saved dataset folder itself).
    split: the split to read from a saved `DatasetDict` (optional when it has only one).
    answer_format: "raw" keeps the answer as written; "gsm8k" keeps only what follows the
        last `####`.
    check_images: fail on image paths that are not existing files.
    default_task: the task of rows without a task field.
    """

    question_field: str = "question"
    answer_field: str = "answer"
    images_field: str = "images"
    task_field: str = "task"
    system_field: str = "system"
    message_field: str = "message"
    image_root: str | None = None
    split: str | None = None
    skip_bad_rows: bool = False
    answer_format: str = "raw"
    check_images: bool = True
    default_task: str = TASK_POLICY

    def __post_init__(self) -> None:
        names = ("question_field", "answer_field", "images_field", "task_field",
                 "system_field", "message_field", "default_task")
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"DataConfig.{name} must be a non-empty string, got {value!r}")
        row_fields = [getattr(self, name) for name in names[:-1]]
        if len(set(row_fields)) != len(row_fields):
            raise ValueError(f"DataConfig field names must be distinct, got {row_fields}")
        if self.answer_format not in ANSWER_FORMATS:
            raise ValueError(
                f"DataConfig.answer_format must be one of {ANSWER_FORMATS}, "
                f"got {self.answer_format!r}"
            )
        if isinstance(self.image_root, os.PathLike):
            object.__setattr__(self, "image_root", os.fspath(self.image_root))
        if self.image_root is not None and (not isinstance(self.image_root, str)
                                            or not self.image_root):
            raise ValueError(f"DataConfig.image_root must be a path or None, "
                             f"got {self.image_root!r}")
        if self.split is not None and (not isinstance(self.split, str) or not self.split):
            raise ValueError(f"DataConfig.split must be a split name or None, got {self.split!r}")
        for name in ("skip_bad_rows", "check_images"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"DataConfig.{name} must be true or false, "
                                 f"got {getattr(self, name)!r}")


@dataclass(frozen=True)
class BadRow:
    """Where a dataset is wrong and why; `row` and `field` are None for whole-file problems.

    row_kind says how `row` counts: "line" (1-based line of a JSON Lines file) or "index"
    (0-based position in the other formats).
    """

    path: str
    row: int | None
    field: str | None
    reason: str
    row_kind: str = ROW_INDEX

    def location(self) -> str:
        parts = [self.path]
        if self.row is not None:
            parts.append(f"line {self.row}" if self.row_kind == ROW_LINE
                         else f"row index {self.row}")
        if self.field is not None:
            parts.append(f"field '{self.field}'")
        return ", ".join(parts)

    def __str__(self) -> str:
        return f"{self.location()}: {self.reason}"


class DatasetError(ValueError):
    """A dataset that cannot be loaded; `path`, `row`, `field` and `reason` say where and why."""

    def __init__(self, problem: BadRow) -> None:
        # The BadRow is the only argument so that the error survives pickling (worker processes).
        super().__init__(problem)
        self.problem = problem
        self.path = problem.path
        self.row = problem.row
        self.field = problem.field
        self.reason = problem.reason
        self.row_kind = problem.row_kind

    def __str__(self) -> str:
        return str(self.problem)


@dataclass(frozen=True)
class LoadedDataset:
    """The examples that loaded, and the bad rows skipped on the way (with skip_bad_rows)."""

    examples: list[Example]
    skipped: list[BadRow]

    def summary(self, max_listed: int = 5) -> str:
        """One line for logs, plus the first few skipped rows with their reasons."""
        lines = [f"loaded {len(self.examples)} examples, skipped {len(self.skipped)} bad rows"]
        lines += [f"  skipped {bad}" for bad in self.skipped[:max_listed]]
        if len(self.skipped) > max_listed:
            lines.append(f"  ... and {len(self.skipped) - max_listed} more")
        return "\n".join(lines)


class _RowProblem(Exception):
    """A bad row, before the file and row number are attached."""

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def load_examples(
    path: str | os.PathLike[str], config: DataConfig | None = None, *, labels: str = LABELS_REQUIRED
) -> LoadedDataset:
    """Read a dataset file or saved dataset folder into examples, in file order.

    labels: "required": every row needs an answer, and task `open` is a bad row; "optional":
        rows without an answer (or with task `open`) become `open` examples with an empty
        answer (a row of another task still needs its answer); "ignored": every row is an
        `open` example, its answer and task fields unread (a file of unlabeled prompts).
    Raises DatasetError for a missing, empty or unreadable input, for the first bad row
    (unless config.skip_bad_rows), and when every row is bad.
    """
    config = config or DataConfig()
    if labels not in LABEL_RULES:
        raise ValueError(f"labels must be one of {LABEL_RULES}, got {labels!r}")
    source = Path(path)
    rows, row_kind = open_rows(source, config)
    data_dir = source if source.is_dir() else source.parent
    image_dir = Path(config.image_root or data_dir).absolute()
    examples: list[Example] = []
    skipped: list[BadRow] = []
    for row, record in rows:
        provenance = {"file": str(source), "row": row}
        try:
            examples.append(_to_example(record, config, image_dir, provenance, labels))
        except _RowProblem as problem:
            bad = BadRow(str(source), row, problem.field, problem.reason, row_kind)
            if not config.skip_bad_rows:
                raise DatasetError(bad) from None
            skipped.append(bad)
    if not examples and not skipped:
        raise _file_error(source, "no rows: the dataset is empty")
    if not examples:
        raise _file_error(source, f"all {len(skipped)} rows are bad; the first: {skipped[0]}")
    return LoadedDataset(examples, skipped)


def gsm8k_final_answer(solution: str) -> str | None:
    """What follows the last `####` of a GSM8K-style solution, without thousands separators.

    None when there is no marker or nothing after it.
    """
    marker = solution.rfind(_GSM8K_MARKER)
    if marker < 0:
        return None
    final = solution[marker + len(_GSM8K_MARKER):].strip()
    if _GROUPED_NUMBER.fullmatch(final):
        final = final.replace(",", "")
    return final or None


def examples_to_jsonl(examples: Iterable[Example], path: str | os.PathLike[str]) -> int:
    """Write examples as JSON Lines (Example.to_dict per line); returns how many.

    The file is replaced atomically, so a crash mid-write never leaves a truncated pool.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    count = 0
    try:
        with partial.open("w", encoding="utf-8") as handle:
            for example in examples:
                handle.write(json.dumps(example.to_dict(), ensure_ascii=False) + "\n")
                count += 1
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    return count


def read_examples_jsonl(path: str | os.PathLike[str]) -> list[Example]:
    """Read a file written by `examples_to_jsonl`; an empty file is an empty pool."""
    source = Path(path)
    if not source.is_file():
        raise _file_error(source, "no such file")
    examples = []
    for line, record in _jsonl_records(source):
        try:
            examples.append(_example_from_record(record))
        except _RowProblem as problem:
            raise DatasetError(
                BadRow(str(source), line, problem.field, problem.reason, ROW_LINE)
            ) from None
    return examples


def _file_error(path: Path, reason: str) -> DatasetError:
    return DatasetError(BadRow(str(path), None, None, reason))


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


# ---------------------------------------------------------------- reading rows from files

def open_rows(source: Path, config: DataConfig) -> tuple[Iterator[tuple[int, Any]], str]:
    """The (row number, record) pairs of a dataset and how rows are numbered (ROW_LINE or
    ROW_INDEX); `sparkrl.benchmark_formats` reads the published benchmark files through it.

    Whole-file problems raise DatasetError here, before any row is read; a record is an
    exception with a `reason` (not a mapping) when one line of a JSON Lines file cannot be parsed.
    """
    if source.is_dir():
        return _saved_dataset_records(source, config.split), ROW_INDEX
    if not source.exists():
        raise _file_error(source, "no such file or folder")
    suffix = source.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise _file_error(
            source,
            f"unsupported file type {suffix or '(no extension)'!r}; supported: "
            f"{', '.join(SUPPORTED_SUFFIXES)}, or a folder saved with datasets' save_to_disk",
        )
    if source.stat().st_size == 0:
        raise _file_error(source, "the file is empty")
    if suffix == ".jsonl":
        return _jsonl_records(source), ROW_LINE
    if suffix == ".json":
        return _json_records(source), ROW_INDEX
    return _parquet_records(source), ROW_INDEX


def _jsonl_records(path: Path) -> Iterator[tuple[int, Any]]:
    # Bytes, decoded per line, so that one badly encoded line is a bad row, not a crash.
    with path.open("rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                yield line_number, _RowProblem(None, "the line is not UTF-8 text")
                continue
            if not text.strip():
                continue
            try:
                yield line_number, json.loads(text)
            except json.JSONDecodeError as error:
                yield line_number, _RowProblem(
                    None, f"not valid JSON ({error.msg} at column {error.colno})"
                )


def _json_records(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        with path.open(encoding="utf-8-sig") as handle:
            document = json.load(handle)
    except UnicodeDecodeError:
        raise _file_error(path, "the file is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        hint = " (one object per line? name the file .jsonl)" if error.msg == "Extra data" else ""
        raise _file_error(
            path, f"not valid JSON ({error.msg} at line {error.lineno}, column {error.colno}){hint}"
        ) from None
    rows = document.get("data") if isinstance(document, dict) else document
    if not isinstance(rows, list):
        raise _file_error(
            path,
            f'expected a list of objects or {{"data": [...]}}, got {_type_name(document)}'
            + (" without a list under 'data'" if isinstance(document, dict) else ""),
        )
    return enumerate(rows)


def _parquet_records(path: Path) -> Iterator[tuple[int, Any]]:
    import pyarrow
    import pyarrow.parquet

    try:
        parquet = pyarrow.parquet.ParquetFile(path)
    except (pyarrow.ArrowException, OSError) as error:
        raise _file_error(path, f"not a readable Parquet file ({error})") from None
    return _batched_records(parquet.iter_batches(batch_size=_BATCH_ROWS))


def _saved_dataset_records(path: Path, split: str | None) -> Iterator[tuple[int, Any]]:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as error:
        raise _file_error(
            path, f"not a folder saved with datasets' save_to_disk ({error})"
        ) from None
    if isinstance(loaded, datasets.DatasetDict):
        loaded = _pick_split(path, loaded, split)
    elif split is not None:
        raise _file_error(path, f"split {split!r} was asked for, but the folder holds one "
                                "Dataset without splits")
    # Arrow batches skip the `datasets` feature decoding (images would become PIL objects;
    # we want their stored paths).
    return _batched_records(loaded.with_format("arrow").iter(batch_size=_BATCH_ROWS))


def _pick_split(path: Path, dataset_dict: Mapping[str, Any], split: str | None) -> Any:
    names = sorted(dataset_dict)
    if split is None:
        if len(names) == 1:
            return dataset_dict[names[0]]
        raise _file_error(path, f"the saved DatasetDict has splits {names}; choose one with split")
    if split not in dataset_dict:
        raise _file_error(path, f"no split {split!r}; the saved DatasetDict has {names}")
    return dataset_dict[split]


def _batched_records(batches: Iterable[Any]) -> Iterator[tuple[int, Any]]:
    index = 0
    for batch in batches:
        for record in batch.to_pylist():
            yield index, record
            index += 1


# ---------------------------------------------------------------- one record -> one Example

def _to_example(
    record: Any, config: DataConfig, image_dir: Path, provenance: Mapping[str, Any], labels: str = "required"
) -> Example:
    if isinstance(record, _RowProblem):
        raise record
    if not isinstance(record, Mapping):
        raise _RowProblem(None, f"expected an object with named fields, got {_type_name(record)}")
    question, images, system = _read_question(record, config, image_dir)
    images += _read_images(record.get(config.images_field), config.images_field,
                           image_dir, config.check_images)
    if labels == LABELS_IGNORED:
        task = TASK_OPEN
    else:
        task = _optional_text(record, config.task_field) or config.default_task
    if task == TASK_OPEN and labels == LABELS_REQUIRED:
        raise _RowProblem(config.task_field, f"task '{TASK_OPEN}' rows {_SELF_REWARD_HINT}")
    optional = labels == LABELS_OPTIONAL and task == TASK_POLICY
    answer = "" if task == TASK_OPEN else _read_answer(record, config, optional)
    task = task if answer else TASK_OPEN
    system = system or _optional_text(record, config.system_field)
    return Example(
        question=question,
        answer=answer,
        images=tuple(dict.fromkeys(images)),  # the same file named twice is one image
        task=task,
        system=system,
        source=dict(provenance),
    )


def _read_question(
    record: Mapping[str, Any], config: DataConfig, image_dir: Path
) -> tuple[str, list[str], str | None]:
    """The question text, the images its chat messages name, and their system turn."""
    message = record.get(config.message_field)
    if isinstance(message, str):
        try:
            messages = json.loads(message)
        except json.JSONDecodeError as error:
            raise _RowProblem(
                config.message_field,
                f"not valid JSON chat messages ({error.msg} at column {error.colno})",
            ) from None
        return _read_messages(messages, config.message_field, image_dir, config.check_images)
    value = record.get(config.question_field)
    if value is None:
        also = (f" (nor a '{config.message_field}' JSON string)"
                if message is None else
                f" ('{config.message_field}' is {_type_name(message)}, not a JSON string)")
        raise _RowProblem(config.question_field, "missing question" + also)
    if isinstance(value, str):
        if not value.strip():
            raise _RowProblem(config.question_field, "empty question")
        return value, [], None
    return _read_messages(value, config.question_field, image_dir, config.check_images)


def _read_messages(
    messages: Any, field: str, image_dir: Path, check_images: bool
) -> tuple[str, list[str], str | None]:
    if not isinstance(messages, list) or not messages:
        raise _RowProblem(field, f"expected text or a non-empty list of chat messages, "
                                 f"got {_type_name(messages)}")
    texts: list[str] = []
    images: list[str] = []
    systems: list[str] = []
    has_user = False
    for position, message in enumerate(messages):
        where = f"message {position}"
        if not isinstance(message, Mapping):
            raise _RowProblem(field, f"{where}: expected an object with role and content, "
                                     f"got {_type_name(message)}")
        role = message.get("role")
        if role not in ("system", "user"):
            raise _RowProblem(field, f"{where}: role {role!r} is not supported; a question has "
                                     "system and user turns (the answer has its own field)")
        turn_texts, turn_images = _read_content(message.get("content"), field, where)
        if role == "system":
            if turn_images:
                raise _RowProblem(field, f"{where}: a system turn cannot hold images")
            systems += turn_texts
            continue
        has_user = True
        texts += turn_texts
        images += [_resolve_image(raw, field, image_dir, check_images) for raw in turn_images]
    if not has_user:
        raise _RowProblem(field, "the chat messages have no user turn")
    question = "\n".join(texts)
    if not question.strip():
        raise _RowProblem(field, "the user turn has no text")
    return question, images, "\n".join(systems) or None


def _read_content(content: Any, field: str, where: str) -> tuple[list[str], list[str]]:
    """The text pieces and raw image paths of one message's content, in order."""
    if isinstance(content, str):
        return [content], []
    if not isinstance(content, list):
        raise _RowProblem(field, f"{where}: content must be text or a list of blocks, "
                                 f"got {_type_name(content)}")
    texts: list[str] = []
    images: list[str] = []
    for block in content:
        kind = block.get("type") if isinstance(block, Mapping) else None
        value = block.get(kind) if kind in ("text", "image") else None
        if not isinstance(value, str):
            raise _RowProblem(field, f"{where}: expected blocks like "
                                     '{"type": "text", "text": ...} or '
                                     '{"type": "image", "image": path}, '
                                     f"got {json.dumps(block, default=str)[:120]}")
        (texts if kind == "text" else images).append(value)
    return texts, images


def _read_images(value: Any, field: str, image_dir: Path, check_images: bool) -> list[str]:
    """Image paths from a path, a list of paths, or stored HF images ({"path": ..., "bytes"})."""
    if value is None or value == "":
        return []
    items = value if isinstance(value, list) else [value]
    paths = []
    for item in items:
        hint = ""
        if isinstance(item, Mapping) and "path" in item:
            # save_to_disk embeds image bytes and keeps only the file's base name.
            if item.get("bytes") is not None:
                hint = ("; the dataset embeds this image as bytes, which sparkrl does not "
                        "unpack: set image_root to the folder holding the image files")
            if not isinstance(item["path"], str) or not item["path"]:
                raise _RowProblem(field, "an image is stored as bytes without a file path; "
                                         "sparkrl needs image files")
            item = item["path"]
        if not isinstance(item, str):
            raise _RowProblem(field, f"expected an image path or a list of paths, "
                                     f"got {_type_name(item)}")
        paths.append(_resolve_image(item, field, image_dir, check_images, hint))
    return paths


def _resolve_image(
    raw: str, field: str, image_dir: Path, check_images: bool, hint: str = ""
) -> str:
    if not raw.strip():
        raise _RowProblem(field, "empty image path")
    # Qwen-VL style messages write local files as file:// URIs.
    path = Path(raw[len(_FILE_URI):] if raw.startswith(_FILE_URI) else raw)
    if not path.is_absolute():
        path = image_dir / path
    if check_images and not path.is_file():
        raise _RowProblem(field, f"image file not found: {path}{hint}")
    return str(path)


def _read_answer(record: Mapping[str, Any], config: DataConfig, optional: bool = False) -> str:
    """The row's answer; "" for a missing or empty one when `optional` (an unlabeled row)."""
    field = config.answer_field
    value = record.get(field)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        if optional:
            return ""
        raise _RowProblem(field, f"missing answer (rows without one {_SELF_REWARD_HINT})")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _RowProblem(field, f"expected text or a number, got {_type_name(value)}")
    answer = str(value).strip()
    if not answer:
        if optional:
            return ""
        raise _RowProblem(field, "empty answer")
    if config.answer_format == "gsm8k":
        final = gsm8k_final_answer(answer)
        if final is None:
            raise _RowProblem(field, f"no final answer after '{_GSM8K_MARKER}' "
                                     "(answer_format is gsm8k)")
        return final
    return answer


def _optional_text(record: Mapping[str, Any], field: str) -> str | None:
    value = record.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _RowProblem(field, f"expected text, got {_type_name(value)}")
    return value.strip() or None


def _example_from_record(record: Any) -> Example:
    """Example.from_dict, after checking the types it would otherwise coerce silently."""
    if isinstance(record, _RowProblem):
        raise record
    if not isinstance(record, Mapping):
        raise _RowProblem(None, f"expected an object, got {_type_name(record)}")
    for name in ("question", "answer"):
        if not isinstance(record.get(name), str):
            raise _RowProblem(name, f"expected text, got {_type_name(record.get(name))}")
    expected: dict[str, tuple[type, ...]] = {
        "images": (list,), "task": (str,), "system": (str,), "source": (dict,),
    }
    for name, types in expected.items():
        value = record.get(name)
        if value is not None and not isinstance(value, types):
            raise _RowProblem(name, f"expected {types[0].__name__}, got {_type_name(value)}")
    if not all(isinstance(image, str) for image in record.get("images") or ()):
        raise _RowProblem("images", "expected a list of paths")
    return Example.from_dict(record)
