"""`sparkrl verify`: check one answer, or a JSONL file of predictions, against ground truth.

    sparkrl verify 'so the total is \\boxed{18}' 'A: 18'
    sparkrl verify --file preds.jsonl --out verdicts.jsonl [--kind label]

File mode reads rows in chunks and writes each chunk's verdicts before reading on, so a bad
row stops the run with an error naming the file, row and field while every verdict before it
is already on disk. Without --out the verdicts go to stdout and the summary to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sparkrl.verification import VerifierConfig

HELP = "verify an answer (or a JSONL file of answers) against the ground truth"

# Rows verified per batch: large enough to keep math-verify workers busy, small enough that
# an error late in a file loses no work before it.
CHUNK_ROWS = 512


class RowError(ValueError):
    """A row of the input file that cannot be verified; the message names file, row, field."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prediction", nargs="?", help="a model response (omit with --file)")
    parser.add_argument("gold", nargs="?", help="the ground truth: an answer or a full solution")
    parser.add_argument("--file", type=Path, help="JSONL file with one prediction and answer per row")
    parser.add_argument("--out", type=Path, help="write one verdict per row here (default: stdout)")
    parser.add_argument("--prediction-field", default="prediction", help="row field of the response (a.b for nested)")
    parser.add_argument("--answer-field", default="answer", help="row field of the ground truth (a.b for nested)")
    parser.add_argument("--kind", choices=("math", "label"), default="math", help="math answers or judge labels")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds allowed per math-verify comparison")
    parser.add_argument("--workers", type=int, default=None, help="math-verify worker processes (default: per core)")


def run(args: argparse.Namespace) -> int:
    from sparkrl.verification import VerifierConfig

    try:
        config = VerifierConfig(timeout_s=args.timeout, workers=args.workers)
    except ValueError as error:
        print(f"sparkrl verify: {error}", file=sys.stderr)
        return 2
    if args.file is None:
        if args.prediction is None or args.gold is None:
            print("sparkrl verify: give PREDICTION and GOLD, or --file F.jsonl", file=sys.stderr)
            return 2
        return _verify_one(args.prediction, args.gold, args.kind, config)
    if args.prediction is not None:
        print("sparkrl verify: give either PREDICTION GOLD or --file, not both", file=sys.stderr)
        return 2
    return _verify_file(args, config)


def _verify_one(prediction: str, gold: str, kind: str, config: "VerifierConfig") -> int:
    from sparkrl.verification import verify_many

    verdict = verify_many([prediction], [gold], kind=kind, workers=1, timeout_s=config.timeout_s)[0]
    print(f"verdict:   {'correct' if verdict.correct else 'wrong'} (score {verdict.score})")
    print(f"extracted: {verdict.extracted if verdict.extracted is not None else '(none)'}")
    print(f"reason:    {verdict.reason}")
    return 0


def _field(row: Mapping[str, Any], name: str, path: Path, line_no: int) -> str:
    """A row's field as text; `a.b` reaches into nested objects when no key `a.b` exists."""
    value: Any = row
    for part in [name] if name in row else name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise RowError(f"{path}: row {line_no}: missing field {name!r}")
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise RowError(f"{path}: row {line_no}: field {name!r} must be a string or number, got {type(value).__name__}")
    return str(value)


def _read_rows(path: Path, pred_field: str, gold_field: str) -> Iterator[tuple[int, str, str]]:
    """(row number, prediction, gold) per non-blank line; raises RowError at the first bad row."""
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise RowError(f"{path}: row {line_no}: not valid JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise RowError(f"{path}: row {line_no}: expected a JSON object, got {type(row).__name__}")
            yield line_no, _field(row, pred_field, path, line_no), _field(row, gold_field, path, line_no)


def _chunks(rows: Iterator[tuple[int, str, str]]) -> Iterator[tuple[list[tuple[int, str, str]], RowError | None]]:
    """Batches of rows; a bad row ends the stream with the rows before it and the error."""
    chunk: list[tuple[int, str, str]] = []
    try:
        for row in rows:
            chunk.append(row)
            if len(chunk) == CHUNK_ROWS:
                yield chunk, None
                chunk = []
    except RowError as error:
        yield chunk, error
        return
    yield chunk, None


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def _verify_file(args: argparse.Namespace, config: "VerifierConfig") -> int:
    from tqdm import tqdm

    from sparkrl.verification import verify_many

    path: Path = args.file
    if not path.is_file():
        print(f"sparkrl verify: {path}: no such file", file=sys.stderr)
        return 2
    out: IO[str] = args.out.open("w", encoding="utf-8") if args.out else sys.stdout
    summary = sys.stdout if args.out else sys.stderr
    total = correct = 0
    error: RowError | None = None
    try:
        with tqdm(total=_count_lines(path), unit="row", file=sys.stderr, disable=None) as progress:
            rows = _read_rows(path, args.prediction_field, args.answer_field)
            for chunk, error in _chunks(rows):
                verdicts = verify_many(
                    [pred for _, pred, _ in chunk],
                    [gold for _, _, gold in chunk],
                    kind=args.kind,
                    workers=config.workers,
                    timeout_s=config.timeout_s,
                )
                for (line_no, _, _), verdict in zip(chunk, verdicts, strict=True):
                    out.write(json.dumps({"row": line_no, **verdict.to_dict()}) + "\n")
                out.flush()
                total += len(chunk)
                correct += sum(v.correct for v in verdicts)
                progress.update(chunk[-1][0] - progress.n if chunk else 0)
    finally:
        if args.out:
            out.close()
    share = f"{correct / total:.2%}" if total else "n/a"
    print(f"correct: {correct}/{total} ({share})", file=summary)
    if error is not None:
        print(f"sparkrl verify: {error} ({total} verdicts before it were written)", file=sys.stderr)
        return 2
    return 0
