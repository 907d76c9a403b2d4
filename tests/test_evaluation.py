"""Evaluation runs on a scripted backend: scores, both-order pairwise, resuming, output files,
self-reflection transitions and accuracy against n."""

from __future__ import annotations

import json
from statistics import mean

import pytest

from sparkrl.benchmarks import PairwiseItem, PointwiseItem
from sparkrl.evaluation import (
    EvalConfig, EvalError, accuracy_by_n, evaluate, probes_for, sample_sizes, shown_answer, summarize,
)
from sparkrl.inference.backends import SamplingParams
from sparkrl.inference.strategies import StrategySettings
from sparkrl.rows import Example

from compact_templates import COMPACT_TEMPLATES


def config(kind: str, **kwargs) -> EvalConfig:
    sampling = kwargs.pop("sampling", SamplingParams())
    return EvalConfig(
        kind=kind, settings=StrategySettings(sampling=sampling, templates=COMPACT_TEMPLATES), show_progress=False, **kwargs
    )


PAIRS = [
    PairwiseItem("q0", "so\nA: 4", "so\nA: 5", "A"),
    PairwiseItem("q1", "so\nA: 7", "so\nA: 6", "B"),
    PairwiseItem("q2", "so\nA: 1", "so\nA: 2", "B"),
    PairwiseItem("q3", "so\nA: 9", "so\nA: 3", "A"),
]
RIGHT = {"q0": "4", "q1": "6", "q2": "2", "q3": "9"}


def knows_best(text: str, i: int, params: SamplingParams) -> str:
    _, question, a, b = text.split("|")
    return "\\boxed{A}" if a == RIGHT[question] else "\\boxed{B}"


# --------------------------------------------------------------------------- pairwise


def test_pairwise_judge_that_always_says_a_scores_exactly_half(scripted, tmp_path):
    summary = evaluate(PAIRS, scripted(lambda *a: "I pick \\boxed{A}"), config("pairwise"), tmp_path)
    assert summary["accuracy"] == 0.5 and summary["n"] == 4
    assert summary["strategies"]["single"]["position_consistency"] == 0.0


def test_pairwise_perfect_judge_is_consistent_in_both_orders(scripted, tmp_path):
    backend = scripted(knows_best)
    summary = evaluate(PAIRS, backend, config("pairwise"), tmp_path)
    assert summary["accuracy"] == 1.0
    assert summary["strategies"]["single"]["position_consistency"] == 1.0
    # Judges see final answers only, each pair in both orders.
    assert backend.prompts()[:2] == ["PAIR|q0|4|5", "PAIR|q0|5|4"]
    record = json.loads((tmp_path / "single.jsonl").read_text().splitlines()[1])
    assert [p["order"] for p in record["probes"]] == ["ab", "ba"]
    assert [p["gold"] for p in record["probes"]] == ["B", "A"]


def test_pairwise_label_follows_the_swap():
    probes = probes_for(PAIRS[1], config("pairwise"))
    assert [(p.task.prompt, p.gold) for p in probes] == [("PAIR|q1|7|6", "B"), ("PAIR|q1|6|7", "A")]


def test_shown_answer_falls_back_to_the_whole_response():
    assert shown_answer("work\n#### 12") == "12"
    assert shown_answer("  just prose  ") == "just prose"


# --------------------------------------------------------------------------- pointwise, reasoning


def test_pointwise_yes_sayer_scores_the_share_of_yes_labels(scripted, tmp_path):
    items = [PointwiseItem("q", "A: 1", "Yes"), PointwiseItem("q", "A: 2", "No"), PointwiseItem("q", "A: 3", "No")]
    summary = evaluate(items, scripted(lambda *a: "\\boxed{Yes}"), config("pointwise"), tmp_path)
    assert summary["accuracy"] == pytest.approx(1 / 3)


def arithmetic(text: str, i: int, params: SamplingParams) -> str:
    """Answers '2+2' with 4 on even samples and 5 on odd ones; other questions wrong."""
    if text.startswith("2+2"):
        return f"\\boxed{{{4 + i % 2}}}"
    return "\\boxed{0}"


REASONING = [Example("2+2", "4"), Example("3+3", "6"), Example("2+2", "4"), Example("1+1", "2")]


def test_reasoning_accuracy_pass_at_1_and_majority(scripted, tmp_path):
    backend = scripted(arithmetic)
    sampled = SamplingParams(n=3, temperature=1.0)
    summary = evaluate(REASONING, backend, config("reasoning", sampling=sampled, suffix="BOX IT"), tmp_path)
    stats = summary["strategies"]["single"]
    assert stats["accuracy"] == 0.5  # the first sample: 4, 0, 4, 0
    assert stats["pass@1"] == pytest.approx((2 / 3 + 0 + 2 / 3 + 0) / 4)
    assert stats["maj@3"] == 0.5
    assert backend.prompts()[0] == "2+2\n\nBOX IT"


def test_every_strategy_writes_its_file_and_summary_row(scripted, tmp_path):
    def respond(text: str, i: int, params: SamplingParams) -> str:
        return "\\boxed{Yes}" if text.startswith("JUDGE|") else arithmetic(text, i, params)

    strategies = ("single", "reflection", "best_of_n", "majority", "weighted_majority")
    cfg = config("reasoning", strategies=strategies, sampling=SamplingParams(n=2, temperature=1.0))
    summary = evaluate(REASONING, scripted(respond), cfg, tmp_path)
    assert list(summary["strategies"]) == list(strategies)
    for name in strategies:
        lines = (tmp_path / f"{name}.jsonl").read_text().splitlines()
        assert [json.loads(line)["index"] for line in lines] == [0, 1, 2, 3]
    assert "rounds" in json.loads((tmp_path / "reflection.jsonl").read_text().splitlines()[0])["probes"][0]
    table = (tmp_path / "summary.md").read_text()
    assert all(f"| {name} |" in table for name in strategies)
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["strategies"]["majority"]["n"] == 4 and "accuracy" in saved
    assert json.loads((tmp_path / "config.json").read_text())["config"]["kind"] == "reasoning"


# --------------------------------------------------------------------------- resuming


def test_resume_skips_finished_items(scripted, tmp_path):
    first = scripted(arithmetic)
    evaluate(REASONING[:2], first, config("reasoning", suffix=""), tmp_path)
    assert first.prompts() == ["2+2", "3+3"]
    second = scripted(arithmetic)
    summary = evaluate(REASONING, second, config("reasoning", suffix=""), tmp_path)
    assert second.prompts() == ["2+2", "1+1"]  # items 2 and 3 only
    assert summary["n"] == 4 and summary["accuracy"] == 0.5
    third = scripted(arithmetic)
    evaluate(REASONING, third, config("reasoning", suffix=""), tmp_path)
    assert third.calls == []
    assert len((tmp_path / "single.jsonl").read_text().splitlines()) == 4


def test_a_torn_last_line_is_redone(scripted, tmp_path):
    evaluate(REASONING, scripted(arithmetic), config("reasoning", suffix=""), tmp_path)
    results = tmp_path / "single.jsonl"
    lines = results.read_text().splitlines()
    results.write_text("\n".join(lines[:3]) + "\n" + lines[3][:20])
    again = scripted(arithmetic)
    evaluate(REASONING, again, config("reasoning", suffix=""), tmp_path)
    assert again.prompts() == ["1+1"]
    assert [json.loads(x)["index"] for x in results.read_text().splitlines()] == [0, 1, 2, 3]


def test_other_settings_or_changed_data_are_errors(scripted, tmp_path):
    evaluate(REASONING, scripted(arithmetic), config("reasoning", suffix=""), tmp_path)
    with pytest.raises(EvalError, match="other settings.*--overwrite"):
        evaluate(REASONING, scripted(arithmetic), config("reasoning", suffix="new"), tmp_path)
    changed = [Example("2+2", "5"), *REASONING[1:]]
    with pytest.raises(EvalError, match="item 0 differs"):
        evaluate(changed, scripted(arithmetic), config("reasoning", suffix=""), tmp_path)
    fresh = scripted(arithmetic)
    evaluate(REASONING, fresh, config("reasoning", suffix="new", overwrite=True), tmp_path)
    assert len(fresh.prompts()) == 4


def test_corrupt_middle_line_is_an_error_naming_the_line(scripted, tmp_path):
    evaluate(REASONING, scripted(arithmetic), config("reasoning", suffix=""), tmp_path)
    results = tmp_path / "single.jsonl"
    lines = results.read_text().splitlines()
    results.write_text("\n".join([lines[0], "{oops", *lines[2:]]) + "\n")
    with pytest.raises(EvalError, match="line 2: not valid JSON"):
        evaluate(REASONING, scripted(arithmetic), config("reasoning", suffix=""), tmp_path)


# --------------------------------------------------------------------------- validation


def test_config_and_item_validation(scripted, tmp_path):
    with pytest.raises(ValueError, match="kind"):
        config("essay")
    with pytest.raises(ValueError, match="unknown strategies"):
        config("reasoning", strategies=("beam",))
    with pytest.raises(ValueError, match="repeat"):
        config("reasoning", strategies=("single", "single"))
    with pytest.raises(EvalError, match="item 0 is a PairwiseItem"):
        evaluate(PAIRS, scripted(knows_best), config("pointwise"), tmp_path)
    with pytest.raises(EvalError, match="no items"):
        evaluate([], scripted(knows_best), config("pointwise"), tmp_path)


def test_summarize_without_records():
    assert summarize([], "reasoning") == {"n": 0, "accuracy": None}


# --------------------------------------------------------------------------- self-reflection rounds


def reflection_record(*history: bool) -> dict:
    """A record of one probe whose answers, round by round, were right (True) or wrong."""
    rounds = [{"round": i, "answer": f"\\boxed{{{i}}}", "extracted": str(i), "correct": c}
              for i, c in enumerate(history)]
    final = {"text": rounds[-1]["answer"], "answer": str(len(history) - 1), "score": None, "correct": history[-1]}
    probe = {"gold": "g", "final": final["text"], "extracted": final["answer"], "correct": history[-1],
             "pass@1": float(history[-1]), "majority_correct": history[-1], "candidates": [final], "rounds": rounds}
    return {"correct": float(history[-1]), "probes": [probe]}


def test_reflection_summary_counts_the_revisions_of_each_round():
    records = [
        reflection_record(False, True),  # right after one revision, then accepted
        reflection_record(False, True, False),  # right, then revised wrong
        reflection_record(True, False, True),  # wrong, then right again
        reflection_record(False, False, False),
        reflection_record(True),  # accepted at once
    ]
    stats = summarize(records, "reasoning", "reflection")
    assert stats["rounds"] == [
        {"round": 0, "accuracy": 0.4},
        {"round": 1, "accuracy": 0.6, "wrong_to_right": 2, "right_to_wrong": 1, "revised": 4},
        {"round": 2, "accuracy": 0.6, "wrong_to_right": 1, "right_to_wrong": 1, "revised": 3},
    ]
    # The totals compare the first answer with the last: only the first probe changed for good.
    assert (stats["wrong_to_right"], stats["right_to_wrong"]) == (1, 0)
    assert stats["accuracy"] == stats["rounds"][-1]["accuracy"] and stats["revised"] == 0.8


def test_records_without_round_correctness_still_summarize():
    record = reflection_record(False, True)
    for row in record["probes"][0]["rounds"]:
        del row["correct"]
    stats = summarize([record], "reasoning", "reflection")
    assert stats["accuracy"] == 1.0 and stats["revised"] == 1.0
    assert "rounds" not in stats and "wrong_to_right" not in stats


def test_reflection_rounds_record_whether_each_answer_is_right(scripted, tmp_path):
    def respond(text: str, i: int, params: SamplingParams) -> str:
        if text.startswith("JUDGE|"):
            return "\\boxed{No}"
        question = text.split("|")[1] if text.startswith("REDO|") else text
        revised = text.startswith("REDO|")
        return {"2+2": ("\\boxed{5}", "\\boxed{4}"), "1+1": ("\\boxed{2}", "\\boxed{3}")}[question][revised]

    items = [Example("2+2", "4"), Example("1+1", "2")]
    summary = evaluate(items, scripted(respond), config("reasoning", strategies=("reflection",), suffix=""), tmp_path)
    records = [json.loads(line) for line in (tmp_path / "reflection.jsonl").read_text().splitlines()]
    assert [[r["correct"] for r in rec["probes"][0]["rounds"]] for rec in records] == [
        [False, True, True], [True, False, False]
    ]
    stats = summary["strategies"]["reflection"]
    assert [(r.get("wrong_to_right"), r.get("right_to_wrong")) for r in stats["rounds"]] == [
        (None, None), (1, 1), (0, 0)
    ]
    assert "## reflection: answers after each round" in (tmp_path / "summary.md").read_text()


# --------------------------------------------------------------------------- accuracy against n


def sampled_probe(*candidates: tuple[str, float, bool]) -> dict:
    rows = [{"text": f"\\boxed{{{a}}}", "answer": a, "score": s, "judge": [], "correct": c} for a, s, c in candidates]
    return {"gold": "g", "final": rows[0]["text"], "extracted": rows[0]["answer"], "correct": rows[0]["correct"],
            "pass@1": mean(float(r["correct"]) for r in rows), "majority_correct": False, "candidates": rows}


# Gold 4: a confident wrong first sample; the right answer wins on score from k = 2, on votes at k = 4.
FIRST = sampled_probe(("5", 0.6, False), ("4", 0.7, True), ("4", 0.3, True), ("7", 0.1, False))
# Gold 2: right first, then two confident wrong ones; the vote ties and goes to the first seen.
SECOND = sampled_probe(("2", 0.2, True), ("3", 0.9, False), ("3", 0.8, False), ("2", 0.1, True))


@pytest.mark.parametrize(
    "strategy, first, second",
    [
        ("single", [0.0, 0.5, 0.5], [1.0, 0.5, 0.5]),
        ("best_of_n", [0.0, 1.0, 1.0], [1.0, 0.0, 0.0]),
        ("majority", [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]),
        ("weighted_majority", [0.0, 1.0, 1.0], [1.0, 0.0, 0.0]),
    ],
)
def test_accuracy_by_n_scores_the_first_k_candidates(strategy, first, second):
    assert accuracy_by_n([FIRST], strategy) == dict(zip(("1", "2", "4"), first))
    assert accuracy_by_n([SECOND], strategy) == dict(zip(("1", "2", "4"), second))
    both = summarize([{"probes": [FIRST]}, {"probes": [SECOND]}], "reasoning", strategy)["by_n"]
    assert both == {k: (a + b) / 2 for k, a, b in zip(("1", "2", "4"), first, second)}


def test_sample_sizes_double_up_to_n():
    assert [sample_sizes(n) for n in (1, 2, 6, 8)] == [[1], [1, 2], [1, 2, 4, 6], [1, 2, 4, 8]]


def test_accuracy_against_n_is_summarised_and_plotted(scripted, tmp_path):
    def respond(text: str, i: int, params: SamplingParams) -> str:
        return "\\boxed{Yes}" if text.startswith("JUDGE|") else arithmetic(text, i, params)

    strategies = ("single", "reflection", "best_of_n", "majority")
    cfg = config("reasoning", strategies=strategies, sampling=SamplingParams(n=4, temperature=1.0))
    summary = evaluate(REASONING, scripted(respond), cfg, tmp_path)
    for name in ("best_of_n", "majority"):
        by_n = summary["strategies"][name]["by_n"]
        assert list(by_n) == ["1", "2", "4"] and by_n["4"] == summary["strategies"][name]["accuracy"]
    assert summary["strategies"]["single"]["by_n"]["4"] == summary["strategies"]["single"]["pass@1"]
    assert "by_n" not in summary["strategies"]["reflection"]
    assert (tmp_path / "accuracy_vs_n.png").stat().st_size > 1000
    assert "| majority | 0.500 | 0.500 | 0.500 |" in (tmp_path / "summary.md").read_text()


def test_no_accuracy_against_n_with_one_sample(scripted, tmp_path):
    cfg = config("reasoning", strategies=("single", "majority"))
    summary = evaluate(REASONING, scripted(arithmetic), cfg, tmp_path)
    assert all("by_n" not in stats for stats in summary["strategies"].values())
    assert not (tmp_path / "accuracy_vs_n.png").exists()
