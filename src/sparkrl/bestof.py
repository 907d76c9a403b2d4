"""Best-of-k judging (`sparkrl eval bestof`): the model ranks the k given responses of each
`BestOfItem` (RewardBench 2) by scores of its own, and is scored as RewardBench 2 scores.

How a response gets its score (`sparkrl.benchmarks.BESTOF_MODES`):
- `pointwise` (the default: k judge calls against k (k - 1), a graded score that rarely ties,
  and the independent ratings RewardBench 2 itself asks generative judges for on Ties): its
  self-judged score, as the sampling strategies score their
  candidates (`sparkrl.inference.strategies.score_candidates`): P(Yes) at the verdict token
  where the backend gives token probabilities, else the share of Yes among `judge_samples`
  sampled verdicts. k judge calls per item (plus k x judge_samples sampled ones where no
  probabilities come back).
- `pairwise`: every ordered pair (i, j), i != j, is judged once with the first pairwise
  template, i shown as A; a response's score is its number of wins. A verdict without a
  letter is no one's win. k (k - 1) judge calls per item.
Judges see the final answer of each response (`shown_answer`), as in the other judging kinds.

Scores of a run, computed from its records alone (each keeps every response's score and the
raw verdicts), so `summary.json` can be recomputed from the results file:
- `accuracy`: the share of items whose chosen responses all score strictly above every
  rejected one (`bestof_correct`; a tie at the top is wrong).
- per subset `score`, as RewardBench 2 publishes it: Ties gets `ties_score`; the other subsets
  the mean `bestof_credit` (1 when the chosen response tops the others, 1/m when it shares the
  top with m - 1 others: `reroll_and_score_dataset` in github.com/allenai/reward-bench,
  rewardbench/utils.py, and `(0 in winners) / len(winners)` in scripts/run_generative_v2.py).
  An item with several chosen responses outside Ties is credited by `bestof_correct`.
- overall `score`: the unweighted mean of the subset scores (the RewardBench 2 paper,
  paper-v2.pdf in that repository: "the final score is an unweighted average across all six
  domains"). None when a subset has no score: a Ties subset without both rows of any prompt,
  as a `--limit` prefix may leave it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from statistics import mean
from typing import Any

from sparkrl.benchmarks import BESTOF_MODES, BestOfItem, bestof_correct, bestof_credit, ties_score
from sparkrl.inference.backends import Backend
from sparkrl.inference.strategies import (
    NO, Candidate, StrategySettings, Task, judge_pairs, pair_letter, says_yes, score_candidates, shown_answer,
)
from sparkrl.verification import verify_label

def is_ties(subset: str) -> bool:
    return subset.lower() == "ties"  # reward-bench compares `subset.lower() == "ties"`


def check_items(items: Sequence[BestOfItem]) -> None:
    """Refuse, before any model call, Ties items that `ties_score` could not score."""
    for index, item in enumerate(items):
        if not is_ties(item.subset):
            continue
        kind, sep, _ = item.item_id.partition(":")
        if not sep or kind not in ("ref", "tied"):
            raise ValueError(f"item {index}: Ties item ids are 'ref:N' or 'tied:N', got {item.item_id!r}")
        if kind == "tied" and len(item.correct) < 2:
            raise ValueError(f"item {index} ({item.item_id}): a tied row needs at least two chosen responses")


# --------------------------------------------------------------------------- judging


def judge_items(
    backend: Backend, items: Sequence[BestOfItem], mode: str, settings: StrategySettings
) -> list[dict[str, Any]]:
    """One record per item (without the index, fingerprint and item envelope): every
    response's score, the raw verdicts, and how the scores rank the chosen responses."""
    if mode not in BESTOF_MODES:
        raise ValueError(f"best-of-k mode must be one of {BESTOF_MODES}, got {mode!r}")
    tasks = [Task(item.question, item.question, images=item.images) for item in items]
    shown = [[shown_answer(r) for r in item.responses] for item in items]
    if mode == "pointwise":
        candidates = [[Candidate(r, s) for r, s in zip(item.responses, row)] for item, row in zip(items, shown)]
        scored = score_candidates(backend, tasks, candidates, settings)
        return [
            _record(item, mode, [float(c.score or 0.0) for c in row], [t for c in row for t in c.judge], _reads_yes_no)
            | {"judge": [list(c.judge) for c in row]}
            for item, row in zip(items, scored)
        ]
    pairs = [(n, i, j) for n, item in enumerate(items) for i, j in _ordered_pairs(len(item.responses))]
    verdicts = iter(judge_pairs(
        backend, [tasks[n] for n, _, _ in pairs], [(shown[n][i], shown[n][j]) for n, i, j in pairs], settings
    ))
    records = []
    for item in items:
        comparisons = [_comparison(i, j, next(verdicts).text) for i, j in _ordered_pairs(len(item.responses))]
        wins = [0.0] * len(item.responses)
        for row in comparisons:
            if row["winner"] is not None:
                wins[row["winner"]] += 1
        texts = [row["verdict"] for row in comparisons]
        records.append(_record(item, mode, wins, texts, lambda t: pair_letter(t) is not None)
                       | {"comparisons": comparisons})
    return records


def _ordered_pairs(k: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(k) for j in range(k) if i != j]


def _comparison(i: int, j: int, verdict: str) -> dict[str, Any]:
    letter = pair_letter(verdict)
    return {"a": i, "b": j, "verdict": verdict, "winner": {"A": i, "B": j}.get(letter or "")}


def _reads_yes_no(text: str) -> bool:
    return says_yes(text) or verify_label(text, NO).correct


def _record(
    item: BestOfItem, mode: str, scores: list[float], verdicts: list[str], readable: Callable[[str], bool]
) -> dict[str, Any]:
    correct = float(bestof_correct(scores, item.correct))
    return {
        "mode": mode,
        "scores": scores,
        "correct": correct,
        "credit": bestof_credit(scores, item.correct) if len(item.correct) == 1 else correct,
        "no_verdict": mean(float(not readable(t)) for t in verdicts) if verdicts else 0.0,
    }


# --------------------------------------------------------------------------- summaries


def summarize(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """`n`, `accuracy`, the RewardBench 2 `score`, `no_verdict` (share of verdicts that name
    no verdict) and `per_subset` (n, accuracy, score of each)."""
    if not records:
        return {"n": 0, "accuracy": None, "score": None}
    by_subset: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        by_subset.setdefault(str(record["item"]["subset"]), []).append(record)
    per_subset = {name: _subset_stats(name, rows) for name, rows in sorted(by_subset.items())}
    scores = [stats["score"] for stats in per_subset.values()]
    return {
        "n": len(records),
        "accuracy": mean(float(r["correct"]) for r in records),
        "score": None if None in scores else mean(scores),
        "no_verdict": mean(float(r["no_verdict"]) for r in records),
        "per_subset": per_subset,
    }


def _subset_stats(name: str, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    stats: dict[str, Any] = {"n": len(records), "accuracy": mean(float(r["correct"]) for r in records)}
    if not is_ties(name):
        return stats | {"score": mean(float(r["credit"]) for r in records)}
    items = [_item(r["item"]) for r in records]
    ids = {item.item_id for item in items}
    paired = any(i.startswith("ref:") and f"tied:{i[len('ref:'):]}" in ids for i in ids)
    return stats | {"score": ties_score(items, [r["scores"] for r in records]) if paired else None}


def _item(record: Mapping[str, Any]) -> BestOfItem:
    return BestOfItem(record["question"], tuple(record["responses"]), tuple(record["correct"]),
                      record["subset"], record["item_id"], tuple(record.get("images", ())))


def subsets_markdown(rows: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """A table of subset scores for each run summarized here (those whose subsets have a score)."""
    lines = []
    for name, stats in rows.items():
        subsets = stats.get("per_subset") or {}
        if not subsets or any("score" not in s for s in subsets.values()):
            continue
        lines += ["", f"## {name}: per subset (score as RewardBench 2 publishes it)", "",
                  "| subset | n | accuracy | score |", "|---|---|---|---|"]
        lines += [f"| {subset} | {s['n']} | {_cell(s['accuracy'])} | {_cell(s['score'])} |"
                  for subset, s in subsets.items()]
        lines.append(f"| overall (mean of subsets) | {stats['n']} | {_cell(stats['accuracy'])} | "
                     f"{_cell(stats['score'])} |")
    return lines


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
