"""Reasoning, pointwise and pairwise evaluation runs: resumable, one JSONL line per item.

Every item becomes one or more probes (a `Task` plus the gold answer): reasoning items ask
the question with the answer-format suffix and are checked with the math verifier; judging
items render the first template of the pointwise or pairwise pool and are checked against
their label. Pairwise items are probed in both orders (A/B as given, then swapped), which
cancels position bias: a judge that always says `A` scores exactly 50%. Position
consistency is the share of pairs where the two verdicts pick the same response.

Judges see only the extracted final answer of each response (as in the recycled training
items); a response without an extractable final answer is shown whole.

Results go to OUT/<strategy>.jsonl, one line per item with the raw outputs, the fingerprint
of the run settings and a hash of the item. A rerun with the same settings skips the items
already in the file, so an interrupted run resumes where it stopped; a file written with
other settings is an error unless `overwrite` is set. `summary.json` and `summary.md` are
rewritten at the end of each run from every finished item of the current item list.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any

from sparkrl.benchmarks import KINDS, Item, PairwiseItem, PointwiseItem
from sparkrl.config import DEFAULT_PROMPT_SUFFIX
from sparkrl.inference.backends import Backend
from sparkrl.inference.strategies import STRATEGIES, Attempt, StrategySettings, Task, pick_vote, run_strategy
from sparkrl.rows import Example
from sparkrl.templates import pairwise_prompt, pointwise_prompt
from sparkrl.verification import Verdict, extract_final_answer, verify_label, verify_many

RECORD_VERSION = 1


class EvalError(RuntimeError):
    """An evaluation that cannot run or resume; the message says which file and why."""


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation run.

    kind: reasoning, pointwise or pairwise.
    strategies: test-time strategies to run, each into its own results file.
    settings: sampling and self-judging settings shared by the strategies.
    suffix: appended to reasoning questions (the answer-format instruction used in training).
    chunk_size: items generated together between two appends to the results file.
    verify_timeout_s: time limit of one math-verify comparison.
    """

    kind: str
    strategies: tuple[str, ...] = ("single",)
    settings: StrategySettings = field(default_factory=StrategySettings)
    suffix: str = DEFAULT_PROMPT_SUFFIX
    chunk_size: int = 32
    verify_timeout_s: float = 5.0
    overwrite: bool = False
    show_progress: bool = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        object.__setattr__(self, "strategies", tuple(self.strategies))
        if not self.strategies:
            raise ValueError("at least one strategy is needed")
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown:
            raise ValueError(f"unknown strategies {unknown}; choose from {sorted(STRATEGIES)}")
        if len(set(self.strategies)) != len(self.strategies):
            raise ValueError(f"strategies repeat: {list(self.strategies)}")
        if self.chunk_size < 1 or self.verify_timeout_s <= 0:
            raise ValueError("chunk_size must be >= 1 and verify_timeout_s > 0")


@dataclass(frozen=True)
class Probe:
    """One question put to the model, with its gold answer. `order` is "ab" or "ba" for pairwise."""

    task: Task
    gold: str
    order: str | None = None


# --------------------------------------------------------------------------- probes


def shown_answer(response: str) -> str:
    """What a judge sees of a response: its final answer, or all of it when none is found."""
    return extract_final_answer(response) or response.strip()


def probes_for(item: Item, config: EvalConfig) -> list[Probe]:
    templates = config.settings.templates
    if isinstance(item, Example):
        prompt = f"{item.question}\n\n{config.suffix}" if config.suffix else item.question
        return [Probe(Task(item.question, prompt, item.system, item.images), item.answer)]
    if isinstance(item, PointwiseItem):
        text = pointwise_prompt(item.question, shown_answer(item.response), templates=templates)
        return [Probe(Task(text, text, images=item.images), item.label)]
    probes = []
    for order, pair in (("ab", item), ("ba", item.swapped())):
        text = pairwise_prompt(
            pair.question, shown_answer(pair.response_a), shown_answer(pair.response_b), templates=templates
        )
        probes.append(Probe(Task(text, text, images=pair.images), pair.label, order))
    return probes


def _check_item_kind(items: Sequence[Item], kind: str) -> None:
    expected = {"reasoning": Example, "pointwise": PointwiseItem, "pairwise": PairwiseItem}[kind]
    for index, item in enumerate(items):
        if not isinstance(item, expected):
            raise EvalError(f"item {index} is a {type(item).__name__}, but a {kind} run needs {expected.__name__}")


# --------------------------------------------------------------------------- records


def fingerprint(strategy: str, config: EvalConfig, backend: Backend) -> str:
    """Hash of everything that shapes a strategy's outputs (not batch or chunk sizes)."""
    settings = {
        "version": RECORD_VERSION,
        "kind": config.kind,
        "strategy": strategy,
        "settings": dataclasses.asdict(config.settings),
        "suffix": config.suffix,
        "backend": backend.describe(),
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def item_hash(item: Item) -> str:
    return hashlib.sha256(json.dumps(item.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def pair_letter(response: str) -> str | None:
    for letter in ("A", "B"):
        if verify_label(response, letter).correct:
            return letter
    return None


def probe_record(probe: Probe, attempt: Attempt, verdicts: Sequence[Verdict]) -> dict[str, Any]:
    """The raw outputs of one probe and how they scored."""
    candidates = list(attempt.candidates)
    final = verdicts[candidates.index(attempt.final)]
    majority = verdicts[candidates.index(pick_vote(candidates))]
    record: dict[str, Any] = {
        "gold": probe.gold,
        "final": attempt.final.text,
        "extracted": final.extracted,
        "correct": final.correct,
        "reason": final.reason,
        "pass@1": mean(v.score for v in verdicts),
        "majority_correct": majority.correct,
        "candidates": [c.to_dict() | {"correct": v.correct} for c, v in zip(candidates, verdicts)],
    }
    if probe.order is not None:
        record["order"] = probe.order
    if attempt.rounds:
        record["rounds"] = [dict(r) for r in attempt.rounds]
    return record


def item_record(index: int, item: Item, probes: list[dict[str, Any]], fp: str) -> dict[str, Any]:
    record = {
        "index": index,
        "fingerprint": fp,
        "item_hash": item_hash(item),
        "item": item.to_dict(),
        "correct": mean(float(p["correct"]) for p in probes),
        "probes": probes,
    }
    if isinstance(item, PairwiseItem):
        letters = [pair_letter(p["final"]) for p in probes]
        record["consistent"] = letters in (["A", "B"], ["B", "A"])
    return record


def evaluate_chunk(
    items: Mapping[int, Item], strategy: str, backend: Backend, config: EvalConfig, fp: str
) -> list[dict[str, Any]]:
    """Generate, verify and record a chunk of items."""
    probes = {index: probes_for(item, config) for index, item in items.items()}
    flat = [p for ps in probes.values() for p in ps]
    attempts = run_strategy(strategy, backend, [p.task for p in flat], config.settings)
    responses = [c.text for a in attempts for c in a.candidates]
    golds = [p.gold for p, a in zip(flat, attempts) for _ in a.candidates]
    check = "math" if config.kind == "reasoning" else "label"
    verdicts = iter(verify_many(responses, golds, kind=check, timeout_s=config.verify_timeout_s))
    per_probe = iter([probe_record(p, a, [next(verdicts) for _ in a.candidates]) for p, a in zip(flat, attempts)])
    return [
        item_record(index, items[index], [next(per_probe) for _ in probes[index]], fp) for index in items
    ]


# --------------------------------------------------------------------------- resuming


def load_finished(path: Path, fp: str, overwrite: bool) -> dict[int, dict[str, Any]]:
    """Finished records of this run in `path`, by item index (a torn last line is dropped)."""
    if overwrite or not path.exists():
        path.write_text("", encoding="utf-8")
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    finished: dict[int, dict[str, Any]] = {}
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):  # an append cut short by an interruption
                path.write_text("".join(f"{kept}\n" for kept in lines[:-1]), encoding="utf-8")
                break
            raise EvalError(f"{path}, line {number}: not valid JSON; fix or remove the file") from None
        if record.get("fingerprint") != fp:
            raise EvalError(
                f"{path}, line {number}: written with other settings (fingerprint "
                f"{record.get('fingerprint')}, this run {fp}); use another --out or --overwrite"
            )
        finished[int(record["index"])] = record
    return finished


def _chunks(indices: list[int], size: int) -> list[list[int]]:
    return [indices[i : i + size] for i in range(0, len(indices), size)]


def run_strategy_eval(
    items: Sequence[Item], strategy: str, backend: Backend, config: EvalConfig, out_dir: Path
) -> list[dict[str, Any]]:
    """Records for every item (finished ones read back, the rest generated and appended)."""
    from tqdm import tqdm

    fp = fingerprint(strategy, config, backend)
    path = out_dir / f"{strategy}.jsonl"
    finished = load_finished(path, fp, config.overwrite)
    for index, record in finished.items():
        if index < len(items) and record.get("item_hash") != item_hash(items[index]):
            raise EvalError(f"{path}: item {index} differs from the one evaluated before; the data changed")
    todo = [i for i in range(len(items)) if i not in finished]
    with path.open("a", encoding="utf-8") as sink, tqdm(
        total=len(items), initial=len(items) - len(todo), desc=strategy, file=sys.stderr,
        disable=not config.show_progress,
    ) as bar:
        for chunk in _chunks(todo, config.chunk_size):
            for record in evaluate_chunk({i: items[i] for i in chunk}, strategy, backend, config, fp):
                sink.write(json.dumps(record, ensure_ascii=False) + "\n")
                finished[record["index"]] = record
            sink.flush()
            bar.update(len(chunk))
    return [finished[i] for i in range(len(items))]


# --------------------------------------------------------------------------- summaries


def summarize(records: Sequence[Mapping[str, Any]], kind: str) -> dict[str, Any]:
    """Accuracy over probes (both orders for pairwise), pass@1, maj@k where sampled, and more."""
    probes = [p for r in records for p in r["probes"]]
    if not probes:
        return {"n": 0, "accuracy": None}
    k = max(len(p["candidates"]) for p in probes)
    summary: dict[str, Any] = {
        "n": len(records),
        "accuracy": mean(float(p["correct"]) for p in probes),
        "pass@1": mean(p["pass@1"] for p in probes),
        "no_answer": mean(float(p["extracted"] is None) for p in probes),
    }
    if k > 1:
        summary[f"maj@{k}"] = mean(float(p["majority_correct"]) for p in probes)
    if kind == "pairwise":
        summary["position_consistency"] = mean(float(r["consistent"]) for r in records)
    if any("rounds" in p for p in probes):
        summary["revised"] = mean(float(len(p.get("rounds", ())) > 1) for p in probes)
    return summary


def summary_markdown(summary: Mapping[str, Any]) -> str:
    rows = summary["strategies"]
    columns = list(dict.fromkeys(key for stats in rows.values() for key in stats))
    lines = [
        f"# {summary['kind']} evaluation of {summary['backend'].get('model', '?')}",
        "",
        "| strategy | " + " | ".join(columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for name, stats in rows.items():
        cells = [_cell(stats.get(c)) for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def evaluate(items: Sequence[Item], backend: Backend, config: EvalConfig, out_dir: str | Path) -> dict[str, Any]:
    """Run every strategy of `config` on `items`, write results and summaries to `out_dir`,
    and return the summary (top-level `accuracy` and `n` are those of the first strategy)."""
    if not items:
        raise EvalError("no items to evaluate")
    _check_item_kind(items, config.kind)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(
        json.dumps(
            {"config": dataclasses.asdict(config), "backend": backend.describe(),
             "fingerprints": {s: fingerprint(s, config, backend) for s in config.strategies}},
            indent=2, default=str,
        ),
        encoding="utf-8",
    )
    per_strategy = {
        s: summarize(run_strategy_eval(items, s, backend, config, out), config.kind) for s in config.strategies
    }
    first = per_strategy[config.strategies[0]]
    summary = {
        "kind": config.kind,
        "backend": backend.describe(),
        "accuracy": first["accuracy"],
        "n": first["n"],
        "strategies": per_strategy,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    (out / "summary.md").write_text(summary_markdown(summary), encoding="utf-8")
    return summary
