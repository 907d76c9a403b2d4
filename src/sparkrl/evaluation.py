"""Reasoning, pointwise, pairwise and best-of-k evaluation runs: resumable, one JSONL line per item.

Every item becomes one or more probes (a `Task` plus the gold answer): reasoning items ask
the question with the answer-format suffix and are checked with the math verifier; judging
items render the first template of the pointwise or pairwise pool and are checked against
their label. Pairwise items are probed in both orders (A/B as given, then swapped), which
cancels position bias: a judge that always says `A` scores exactly 50%. Position
consistency is the share of pairs where the two verdicts pick the same response.

Judges see only the extracted final answer of each response (as in the recycled training
items); a response without an extractable final answer is shown whole.

Best-of-k items are judged and summarized by `sparkrl.bestof` (the model scores each of the k
responses; RewardBench 2's scoring); they run through the same files and resuming, with the
judging mode in place of a strategy (OUT/<mode>.jsonl).

Results go to OUT/<strategy>.jsonl, one line per item with the raw outputs, the fingerprint
of the run settings and a hash of the item. A rerun with the same settings skips the items
already in the file, so an interrupted run resumes where it stopped; a file written with
other settings is an error unless `overwrite` is set. `summary.json` and `summary.md` are
rewritten at the end of each run from every finished item of the current item list.

Summaries are computed from the records alone: what each self-reflection round changed
(every round's answer is checked), and accuracy against n for the sampling strategies (each
question's first k candidates, picked among with their recorded self-judged scores).
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

from sparkrl import bestof
from sparkrl.benchmarks import BESTOF_MODES, DEFAULT_BESTOF_MODE, KINDS, BestOfItem, Item, PairwiseItem, PointwiseItem
from sparkrl.config import DEFAULT_PROMPT_SUFFIX
from sparkrl.inference.backends import Backend
from sparkrl.inference.strategies import (
    SELECTORS, STRATEGIES, Attempt, Candidate, StrategySettings, Task, pair_letter, pick_vote, run_strategy,
    shown_answer,
)
from sparkrl.rows import Example
from sparkrl.templates import pairwise_prompt, pointwise_prompt
from sparkrl.verification import Verdict, verify_many

RECORD_VERSION = 1


class EvalError(RuntimeError):
    """An evaluation that cannot run or resume; the message says which file and why."""


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation run.

    kind: reasoning, pointwise, pairwise or bestof.
    strategies: test-time strategies to run, each into its own results file (bestof: single only).
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
    bestof_mode: str = DEFAULT_BESTOF_MODE

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.bestof_mode not in BESTOF_MODES:
            raise ValueError(f"bestof_mode must be one of {BESTOF_MODES}, got {self.bestof_mode!r}")
        if self.kind == "bestof" and tuple(self.strategies) != ("single",):
            raise ValueError("test-time strategies do not apply to bestof items (their responses are given); "
                             f"choose how they are judged with bestof_mode {BESTOF_MODES}")
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

    @property
    def runs(self) -> tuple[str, ...]:
        """What each results file (OUT/<run>.jsonl) holds: a strategy, or for bestof the judging mode."""
        return (self.bestof_mode,) if self.kind == "bestof" else self.strategies


@dataclass(frozen=True)
class Probe:
    """One question put to the model, with its gold answer. `order` is "ab" or "ba" for pairwise."""

    task: Task
    gold: str
    order: str | None = None


# --------------------------------------------------------------------------- probes


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
    expected = {"reasoning": Example, "pointwise": PointwiseItem, "pairwise": PairwiseItem, "bestof": BestOfItem}[kind]
    for index, item in enumerate(items):
        if not isinstance(item, expected):
            raise EvalError(f"item {index} is a {type(item).__name__}, but a {kind} run needs {expected.__name__}")
    if kind == "bestof":
        try:
            bestof.check_items(items)  # type: ignore[arg-type]
        except ValueError as err:
            raise EvalError(str(err)) from None


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


def probe_record(
    probe: Probe, attempt: Attempt, verdicts: Sequence[Verdict], round_verdicts: Sequence[Verdict] = ()
) -> dict[str, Any]:
    """The raw outputs of one probe and how they scored (`round_verdicts`: one per
    self-reflection round, in order)."""
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
        record["rounds"] = [dict(r) | {"correct": v.correct} for r, v in zip(attempt.rounds, round_verdicts)]
    return record


def record_envelope(index: int, item: Item, fp: str) -> dict[str, Any]:
    """What every record starts with: where the item is, the run's fingerprint, the item."""
    return {"index": index, "fingerprint": fp, "item_hash": item_hash(item), "item": item.to_dict()}


def item_record(index: int, item: Item, probes: list[dict[str, Any]], fp: str) -> dict[str, Any]:
    record = record_envelope(index, item, fp) | {
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
    if config.kind == "bestof":
        judged = bestof.judge_items(backend, list(items.values()), strategy, config.settings)  # type: ignore[arg-type]
        return [record_envelope(index, item, fp) | body for (index, item), body in zip(items.items(), judged)]
    probes = {index: probes_for(item, config) for index, item in items.items()}
    flat = [p for ps in probes.values() for p in ps]
    attempts = run_strategy(strategy, backend, [p.task for p in flat], config.settings)
    # Every candidate is checked, and every self-reflection round's answer, so that the
    # summary can count the revisions that turned an answer right or wrong.
    checked = [[c.text for c in a.candidates] + [r["answer"] for r in a.rounds] for a in attempts]
    responses = [text for texts in checked for text in texts]
    golds = [p.gold for p, texts in zip(flat, checked) for _ in texts]
    check = "math" if config.kind == "reasoning" else "label"
    verdicts = iter(verify_many(responses, golds, kind=check, timeout_s=config.verify_timeout_s))
    per_probe = iter([
        probe_record(p, a, [next(verdicts) for _ in a.candidates], [next(verdicts) for _ in a.rounds])
        for p, a in zip(flat, attempts)
    ])
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


def summarize(records: Sequence[Mapping[str, Any]], kind: str, strategy: str = "single") -> dict[str, Any]:
    """Accuracy over probes (both orders for pairwise), pass@1, maj@k where sampled, and more:
    for self-reflection the answers each round turned right or wrong, for the sampling
    strategies accuracy against n (`by_n`). Best-of-k records: `sparkrl.bestof.summarize`."""
    if kind == "bestof":
        return bestof.summarize(records)
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
        summary |= reflection_transitions(probes)
    if k > 1 and strategy in BY_N_STRATEGIES:
        summary["by_n"] = accuracy_by_n(probes, strategy)
    if subsets := per_subset(records):
        summary["per_subset"] = subsets
    return summary


def per_subset(records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Accuracy and n per benchmark subset, for the items that name one (an example's
    `source["subset"]`, a judging item's `subset`); empty when none does."""
    scores: dict[str, list[float]] = {}
    for record in records:
        item = record.get("item") or {}
        subset = item.get("subset") or (item.get("source") or {}).get("subset")
        if subset:
            scores.setdefault(str(subset), []).append(float(record["correct"]))
    return {name: {"accuracy": mean(values), "n": len(values)} for name, values in sorted(scores.items())}


def reflection_transitions(probes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Accuracy after each self-reflection round, and per round how many answers were revised
    and how many revisions turned a wrong answer right or a right one wrong; the totals
    compare the first answer with the last. A probe that stopped early keeps its last answer
    in later rounds. Empty for records written before rounds recorded their correctness."""
    histories = [p["rounds"] for p in probes]
    if any("correct" not in r for rounds in histories for r in rounds):
        return {}
    current = [bool(rounds[0]["correct"]) for rounds in histories]
    first = list(current)
    table: list[dict[str, Any]] = [{"round": 0, "accuracy": mean(map(float, current))}]
    for index in range(1, max(map(len, histories))):
        counts = {"wrong_to_right": 0, "right_to_wrong": 0, "revised": 0}
        for position, rounds in enumerate(histories):
            if index < len(rounds):
                now = bool(rounds[index]["correct"])
                counts["wrong_to_right"] += int(now and not current[position])
                counts["right_to_wrong"] += int(current[position] and not now)
                counts["revised"] += 1
                current[position] = now
        table.append({"round": index, "accuracy": mean(map(float, current)), **counts})
    return {
        "rounds": table,
        "wrong_to_right": sum(int(last and not start) for start, last in zip(first, current)),
        "right_to_wrong": sum(int(start and not last) for start, last in zip(first, current)),
    }


BY_N_STRATEGIES = ("single", *SELECTORS)


def sample_sizes(n: int) -> list[int]:
    """1, 2, 4, ... up to n (n itself included when it is not a power of two)."""
    return [size for size in (1 << i for i in range(n.bit_length())) if size < n] + [n]


def accuracy_by_n(probes: Sequence[Mapping[str, Any]], strategy: str) -> dict[str, float]:
    """Accuracy had only the first k samples of each question been drawn, for k in
    `sample_sizes(n)`: the strategy's own pick among them, from the recorded self-judged
    scores (no new model calls); for `single`, their mean correctness (pass@1)."""
    n = max(len(p["candidates"]) for p in probes)
    return {str(k): mean(_first_k_correct(p["candidates"][:k], strategy) for p in probes) for k in sample_sizes(n)}


def _first_k_correct(rows: Sequence[Mapping[str, Any]], strategy: str) -> float:
    if strategy == "single":
        return mean(float(c["correct"]) for c in rows)
    candidates = [Candidate(c["text"], c["answer"], c["score"]) for c in rows]
    return float(rows[candidates.index(SELECTORS[strategy](candidates))]["correct"])


def summary_markdown(summary: Mapping[str, Any]) -> str:
    rows = summary["strategies"]
    columns = list(dict.fromkeys(
        key for stats in rows.values() for key, value in stats.items() if not isinstance(value, (Mapping, list))
    ))
    lines = [
        f"# {summary['kind']} evaluation of {summary['backend'].get('model', '?')}",
        "",
        "| strategy | " + " | ".join(columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for name, stats in rows.items():
        cells = [_cell(stats.get(c)) for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines + _rounds_markdown(rows) + _by_n_markdown(rows) + bestof.subsets_markdown(rows)) + "\n"


def _rounds_markdown(rows: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = []
    for name, stats in rows.items():
        if "rounds" not in stats:
            continue
        lines += ["", f"## {name}: answers after each round", "",
                  "| round | accuracy | revised | wrong to right | right to wrong |", "|---|---|---|---|---|"]
        for row in stats["rounds"]:
            cells = [row["accuracy"], *(row.get(c) for c in ("revised", "wrong_to_right", "right_to_wrong"))]
            lines.append(f"| {row['round']} | " + " | ".join(map(_cell, cells)) + " |")
        lines.append(f"| first to last | {_cell(stats['accuracy'])} | - | {stats['wrong_to_right']} | "
                     f"{stats['right_to_wrong']} |")
    return lines


def _by_n_markdown(rows: Mapping[str, Mapping[str, Any]]) -> list[str]:
    curves = {name: stats["by_n"] for name, stats in rows.items() if "by_n" in stats}
    if not curves:
        return []
    sizes = list(dict.fromkeys(k for curve in curves.values() for k in curve))
    lines = ["", "## Accuracy against n (the first n samples of each question)", "",
             "| strategy | " + " | ".join(f"n={k}" for k in sizes) + " |", "|---" * (len(sizes) + 1) + "|"]
    for name, curve in curves.items():
        lines.append(f"| {name} | " + " | ".join(_cell(curve.get(k)) for k in sizes) + " |")
    return lines


def plot_accuracy_vs_n(summary: Mapping[str, Any], path: Path) -> None:
    """One line per strategy with `by_n`: accuracy against the samples per question."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    sizes: set[int] = set()
    for name, stats in summary["strategies"].items():
        if "by_n" in stats:
            xs = [int(k) for k in stats["by_n"]]
            sizes.update(xs)
            label = f"{name} (pass@1)" if name == "single" else name
            ax.plot(xs, [100 * v for v in stats["by_n"].values()], marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(sizes), [str(k) for k in sorted(sizes)])
    ax.set_xlabel("samples per question (n)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"{summary['kind']}: accuracy against n ({summary['backend'].get('model', '?')})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def evaluate(
    items: Sequence[Item], backend: Backend, config: EvalConfig, out_dir: str | Path, data: str | None = None
) -> dict[str, Any]:
    """Run every strategy of `config` (for bestof: its judging mode) on `items`, write results
    and summaries to `out_dir`, and return the summary (top-level `accuracy` and `n`, and
    bestof's `score`, are those of the first strategy).
    `data` names where the items came from (the `--data` spec); config.json keeps it for
    `sparkrl eval report`. With more than one sample per question, also plots accuracy
    against n (accuracy_vs_n.png)."""
    if not items:
        raise EvalError("no items to evaluate")
    _check_item_kind(items, config.kind)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(
        json.dumps(
            {"config": dataclasses.asdict(config), "backend": backend.describe(), "data": data,
             "fingerprints": {s: fingerprint(s, config, backend) for s in config.runs}},
            indent=2, default=str,
        ),
        encoding="utf-8",
    )
    per_strategy = {
        s: summarize(run_strategy_eval(items, s, backend, config, out), config.kind, s) for s in config.runs
    }
    first = per_strategy[config.runs[0]]
    summary = {
        "kind": config.kind,
        "backend": backend.describe(),
        "accuracy": first["accuracy"],
        **({"score": first["score"]} if "score" in first else {}),
        "n": first["n"],
        "strategies": per_strategy,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    (out / "summary.md").write_text(summary_markdown(summary), encoding="utf-8")
    if any("by_n" in stats for stats in per_strategy.values()):
        plot_accuracy_vs_n(summary, out / "accuracy_vs_n.png")
    return summary
