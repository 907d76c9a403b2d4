"""Best-of-k judging (`sparkrl eval bestof`) on scripted backends and the RewardBench 2 fixture:
pointwise scores from token probabilities and from sampled verdicts, pairwise win counts, the
published subset scores, records that recompute the summary, resuming, and the CLI end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from sparkrl import bestof
from sparkrl.benchmarks import BestOfItem, load_items, ties_score
from sparkrl.cli import main
from sparkrl.evaluation import EvalConfig, EvalError, evaluate
from sparkrl.inference.backends import Generation, SamplingParams
from sparkrl.inference.strategies import StrategySettings

from compact_templates import COMPACT_TEMPLATES

DATA = Path(__file__).parent / "fixtures" / "benchmarks" / "rewardbench2" / "test.jsonl"
# The judge's belief that each response is right. Factuality: Paris is right but ties with
# Lyon; Ties: the right colours above the wrong ones, tightly enough for the margin terms.
BELIEF = {"Paris.": 0.9, "Lyon.": 0.9, "Nice.": 0.2, "Lille.": 0.1,
          "Red": 0.8, "Blue": 0.75, "Yellow": 0.7, "Green": 0.3, "Purple": 0.1}


def config(mode: str = "pointwise", judge_samples: int = 4) -> EvalConfig:
    settings = StrategySettings(templates=COMPACT_TEMPLATES, judge_samples=judge_samples)
    return EvalConfig(kind="bestof", settings=settings, bestof_mode=mode, show_progress=False)


def items(tmp_path: Path) -> list[BestOfItem]:
    return load_items("bestof", f"rewardbench2:{DATA}", image_cache=tmp_path / "cache")


def with_probability(text: str, i: int, params: SamplingParams) -> Generation:
    """`\\boxed{Yes}` with P(Yes) = the belief in the judged response."""
    p = BELIEF[text.split("|")[2]]
    top = {"Yes": math.log(p), "No": math.log(1 - p)}
    return Generation("\\boxed{Yes}", ("\\boxed{", "Yes", "}"), ({}, top, {}))


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_pointwise_ranks_by_verdict_probability_and_scores_as_published(scripted, tmp_path):
    loaded = items(tmp_path)
    backend = scripted(with_probability)
    summary = evaluate(loaded, backend, config(), tmp_path / "out")
    assert len(backend.calls) == 1 and backend.calls[0][1].top_logprobs > 0  # no sampled fallback
    assert len(backend.prompts("JUDGE|")) == 4 + 3 + 5  # one verdict per response
    saved = records(tmp_path / "out" / "pointwise.jsonl")
    plain, ref, tied = saved
    assert plain["scores"] == pytest.approx([BELIEF[r] for r in loaded[0].responses])
    assert plain["judge"] == [["\\boxed{Yes}"]] * 4 and plain["no_verdict"] == 0.0
    # Paris ties Lyon at the top: wrong for accuracy, half a point as RewardBench 2 counts it.
    assert (plain["correct"], plain["credit"]) == (0.0, 0.5)
    assert ref["correct"] == tied["correct"] == 1.0
    stats = summary["strategies"]["pointwise"]
    ties = ties_score(loaded[1:], [ref["scores"], tied["scores"]])
    assert stats["per_subset"] == {
        "Factuality": {"n": 1, "accuracy": 0.0, "score": 0.5},
        "Ties": {"n": 2, "accuracy": 1.0, "score": pytest.approx(ties)},
    }
    assert stats["score"] == pytest.approx((0.5 + ties) / 2) == summary["score"]
    assert stats["accuracy"] == pytest.approx(2 / 3) == summary["accuracy"]
    # The records alone give the summary back.
    assert bestof.summarize(saved) == json.loads((tmp_path / "out" / "summary.json").read_text())["strategies"][
        "pointwise"]
    table = (tmp_path / "out" / "summary.md").read_text()
    assert "| Factuality | 1 | 0.000 | 0.500 |" in table and "| overall (mean of subsets) | 3 |" in table


def test_pointwise_without_probabilities_counts_sampled_yes(scripted, tmp_path):
    def sampled(text: str, i: int, params: SamplingParams) -> str:
        if params.temperature == 0:
            return "I am not sure"  # no probabilities, no verdict: sample instead
        return "\\boxed{Yes}" if i < round(4 * BELIEF[text.split("|")[2]]) else "\\boxed{No}"

    backend = scripted(sampled)
    evaluate(items(tmp_path)[:1], backend, config(), tmp_path / "out")
    (record,) = records(tmp_path / "out" / "pointwise.jsonl")
    responses = items(tmp_path)[0].responses
    assert record["scores"] == [round(4 * BELIEF[r]) / 4 for r in responses]
    assert [len(texts) for texts in record["judge"]] == [5] * 4  # the greedy verdict and 4 samples
    assert record["no_verdict"] == pytest.approx(1 / 5)
    assert [params.n for _, params in backend.calls] == [1, 4]


def test_pairwise_counts_wins_over_every_pair_in_both_orders(scripted, tmp_path):
    def prefers(text: str, i: int, params: SamplingParams) -> str:
        _, _, a, b = text.split("|")
        if {a, b} == {"Paris.", "Lyon."}:
            return "both are fine"  # no letter: a win for neither
        return "\\boxed{A}" if BELIEF[a] > BELIEF[b] else "\\boxed{B}"

    backend = scripted(prefers)
    summary = evaluate(items(tmp_path), backend, config("pairwise"), tmp_path / "out")
    assert len(backend.prompts("PAIR|")) == 4 * 3 + 3 * 2 + 5 * 4
    plain, ref, tied = records(tmp_path / "out" / "pairwise.jsonl")
    wins = dict(zip(items(tmp_path)[0].responses, plain["scores"]))
    assert wins == {"Paris.": 4.0, "Lyon.": 4.0, "Nice.": 2.0, "Lille.": 0.0}
    assert len(plain["comparisons"]) == 12 and plain["no_verdict"] == pytest.approx(2 / 12)
    undecided = [c for c in plain["comparisons"] if c["winner"] is None]
    assert sorted((c["a"], c["b"]) for c in undecided) == sorted(
        [(plain["item"]["responses"].index("Paris."), plain["item"]["responses"].index("Lyon.")),
         (plain["item"]["responses"].index("Lyon."), plain["item"]["responses"].index("Paris."))])
    assert sorted(tied["scores"]) == [0.0, 2.0, 4.0, 6.0, 8.0] and ref["correct"] == 1.0
    assert summary["strategies"]["pairwise"]["per_subset"]["Factuality"]["score"] == 0.5


def test_resuming_and_modes_in_files_of_their_own(scripted, tmp_path):
    loaded, out = items(tmp_path), tmp_path / "out"
    evaluate(loaded[:2], scripted(with_probability), config(), out)
    again = scripted(with_probability)
    summary = evaluate(loaded, again, config(), out)
    assert len(again.prompts("JUDGE|")) == 5 and summary["n"] == 3  # only the third item
    evaluate(loaded, scripted(lambda *a: "\\boxed{A}"), config("pairwise"), out)  # no fingerprint clash
    assert sorted(p.name for p in out.glob("*.jsonl")) == ["pairwise.jsonl", "pointwise.jsonl"]
    with pytest.raises(EvalError, match="other settings"):
        evaluate(loaded, scripted(with_probability), config(judge_samples=2), out)


def test_validation_comes_before_any_model_call(scripted, tmp_path):
    with pytest.raises(ValueError, match="test-time strategies do not apply"):
        EvalConfig(kind="bestof", strategies=("reflection",))
    with pytest.raises(ValueError, match="bestof_mode"):
        EvalConfig(kind="bestof", bestof_mode="listwise")
    backend = scripted(with_probability)
    odd = BestOfItem("q", ("Red", "Green"), (0,), "Ties", "7")
    with pytest.raises(EvalError, match="'ref:N' or 'tied:N'"):
        evaluate([odd], backend, config(), tmp_path / "out")
    assert backend.calls == []


def test_ties_without_both_rows_of_a_prompt_has_no_score(scripted, tmp_path):
    summary = evaluate(items(tmp_path)[:2], scripted(with_probability), config(), tmp_path / "out")
    stats = summary["strategies"]["pointwise"]
    assert stats["per_subset"]["Ties"]["score"] is None and stats["score"] is None
    assert stats["per_subset"]["Ties"]["accuracy"] == 1.0


def test_sparkrl_eval_bestof_end_to_end_on_a_tiny_model(tiny_model_dir, tmp_path, capsys):
    common = ["eval", "bestof", "--model", str(tiny_model_dir), "--data", f"rewardbench2:{DATA}",
              "--image-cache", str(tmp_path / "cache"), "--judge-max-new-tokens", "3", "--judge-samples", "1",
              "--no-progress"]
    for mode in ("pointwise", "pairwise"):
        assert main([*common, "--bestof-mode", mode, "--out", str(tmp_path / mode)]) == 0
        assert f"{mode}: RewardBench 2 score" in capsys.readouterr().out
        summary = json.loads((tmp_path / mode / "summary.json").read_text())
        assert summary["kind"] == "bestof" and summary["n"] == 3
        assert set(summary["strategies"][mode]["per_subset"]) == {"Factuality", "Ties"}
        assert 0.0 <= summary["score"] <= 1.0
    report = ["eval", "report", str(tmp_path / "pointwise"), str(tmp_path / "pairwise"), "--names", "a,b",
              "--out", str(tmp_path / "report")]
    assert main(report) == 0
    assert "| model | test/bestof/pointwise | test/bestof/pairwise | average |" in capsys.readouterr().out
