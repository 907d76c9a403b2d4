"""`sparkrl recycle`: turn a JSONL file of scored rollout groups into judge and reflection items.

Each input row is one group: `question`, `answer` (the ground truth), optional `images` (list
of paths) and `rollouts` (list of {"text": str, "reward": number}). Each rollout's final
answer is extracted with `sparkrl.verification.extract_final_answer`. The items are written as
JSONL (`Example.to_dict` per line) and the statistics are printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HELP = "recycle scored rollout groups (JSONL) into pointwise, pairwise and reflection items"


class InputError(ValueError):
    """A bad input row; the message names the file, the row and the field."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--rollouts", type=Path, required=True, help="JSONL file, one group per row")
    add("--out", type=Path, required=True, help="where to write the items (JSONL)")
    add("--seed", type=int, default=0, help="random seed (default: 0)")
    add("--no-balance", action="store_true", help="no label or position balancing (the authors' selection)")
    add("--balance-kinds", action="store_true", help="also balance pointwise against pairwise counts")
    add("--both-orders", action="store_true", help="each pairwise pair twice, the correct answer at (A) and at (B)")
    add("--kinds", default="pointwise,pairwise,reflection", help="comma-separated tasks to build")
    # Caps left out keep RecyclingConfig's defaults: 0.5 judge and 0.5 reflection items per
    # group (the authors' 32 + 32 per 64 prompts), no absolute cap.
    per_group = "cap per group (value x groups, rounded up), or 'none'"
    add("--judge-per-group", type=_per_group, default=argparse.SUPPRESS, help=f"judge items {per_group} (default: 0.5)")
    add("--reflection-per-group", type=_per_group, default=argparse.SUPPRESS,
        help=f"reflection items {per_group} (default: 0.5)")
    add("--max-judge", type=_cap, default=argparse.SUPPRESS, help="absolute cap on judge items, or 'none' (default)")
    add("--max-reflection", type=_cap, default=argparse.SUPPRESS,
        help="absolute cap on reflection items, or 'none' (default)")
    add("--mixed-pointwise-prob", type=float, default=0.3, help="chance of pointwise over pairwise in mixed groups")


def _cap(text: str, kind: type = int) -> int | float | None:
    if text.strip().lower() == "none":
        return None
    expected = "a non-negative integer" if kind is int else "a non-negative number"
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected} or 'none', got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected {expected} or 'none', got {text!r}")
    return value


def _per_group(text: str) -> float | None:
    return _cap(text, float)


def _field(record: dict[str, Any], name: str, kinds: tuple[type, ...], where: str) -> Any:
    if name not in record:
        raise InputError(f"{where}: missing field '{name}'")
    value = record[name]
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        expected = " or ".join(k.__name__ for k in kinds)
        raise InputError(f"{where}: field '{name}' must be {expected}, got {type(value).__name__}")
    return value


def parse_group(record: object, path: Path, row: int) -> Any:
    """One input row as a recycling `Group` (raises InputError naming file, row and field)."""
    from sparkrl.recycling import Group, Rollout
    from sparkrl.verification import extract_final_answer

    where = f"{path} row {row}"
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(record).__name__}")
    question = _field(record, "question", (str,), where)
    answer = _field(record, "answer", (str, int, float), where)
    images = record.get("images") or []
    if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
        raise InputError(f"{where}: field 'images' must be a list of strings")
    raw_rollouts = _field(record, "rollouts", (list,), where)
    if not raw_rollouts:
        raise InputError(f"{where}: field 'rollouts' is empty")
    rollouts = []
    for i, raw in enumerate(raw_rollouts):
        at = f"{where} rollouts[{i}]"
        if not isinstance(raw, dict):
            raise InputError(f"{at}: expected a JSON object with 'text' and 'reward'")
        text = _field(raw, "text", (str,), at)
        reward = _field(raw, "reward", (int, float, bool), at)
        try:
            rollouts.append(Rollout(text=text, reward=float(reward), answer=extract_final_answer(text)))
        except ValueError as err:
            raise InputError(f"{at}: {err}") from None
    try:
        return Group(question=question, answer=str(answer), rollouts=tuple(rollouts), images=tuple(images),
                     source={"file": str(path), "row": row})
    except ValueError as err:
        raise InputError(f"{where}: {err}") from None


def read_groups(path: Path) -> list[Any]:
    """All groups of a JSONL file (rows numbered from 1; blank lines are skipped)."""
    groups = []
    with path.open(encoding="utf-8") as handle:
        for row, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise InputError(f"{path} row {row}: invalid JSON ({err.msg})") from None
            groups.append(parse_group(record, path, row))
    return groups


def run(args: argparse.Namespace) -> int:
    from sparkrl.recycling import RecyclingConfig, recycle

    balance = not args.no_balance
    caps = {
        field: getattr(args, option)
        for option, field in (
            ("judge_per_group", "judge_items_per_group"),
            ("reflection_per_group", "reflection_items_per_group"),
            ("max_judge", "max_judge_items"),
            ("max_reflection", "max_reflection_items"),
        )
        if hasattr(args, option)
    }
    try:
        config = RecyclingConfig(
            kinds=tuple(k.strip() for k in args.kinds.split(",") if k.strip()),
            mixed_pointwise_prob=args.mixed_pointwise_prob,
            **caps,
            balance_labels=balance,
            balance_positions=balance,
            balance_kinds=args.balance_kinds,
            pairwise_both_orders=args.both_orders,
        )
    except ValueError as err:
        print(f"sparkrl recycle: {err}", file=sys.stderr)
        return 2
    try:
        groups = read_groups(args.rollouts)
    except OSError as err:
        print(f"sparkrl recycle: cannot read {args.rollouts}: {err.strerror}", file=sys.stderr)
        return 2
    except InputError as err:
        print(f"sparkrl recycle: {err}", file=sys.stderr)
        return 2
    items, stats = recycle(groups, config, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as handle:
        for item in items:
            handle.write(json.dumps(item.to_dict(), ensure_ascii=False) + "\n")
    print(json.dumps(stats.to_dict(), indent=2))
    return 0
