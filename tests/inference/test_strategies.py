"""Test-time strategies on a scripted backend: what is asked, what is picked, what is recorded."""

from __future__ import annotations

import math
import pytest

from sparkrl.inference.backends import Generation, SamplingParams
from sparkrl.inference.strategies import (
    Candidate,
    StrategySettings,
    Task,
    pick_best,
    pick_vote,
    run_strategy,
    verdict_probability,
)

from compact_templates import COMPACT_TEMPLATES


def settings(**kwargs) -> StrategySettings:
    return StrategySettings(templates=COMPACT_TEMPLATES, **kwargs)


TASKS = [Task("q1", "ask q1"), Task("q2", "ask q2")]


def with_verdict(text: str, p_yes: float) -> Generation:
    """A judge output whose verdict token carries P(Yes) = p_yes among Yes/No."""
    tokens = (text, "\\boxed{", "Yes" if p_yes >= 0.5 else "No", "}")
    alternatives = {"Yes": math.log(p_yes * 0.8), "No": math.log((1 - p_yes) * 0.8), "Maybe": math.log(0.2)}
    top = ({}, {}, alternatives, {})
    return Generation("".join(tokens), tokens, top)


# --------------------------------------------------------------------------- verdict probability


def test_verdict_probability_renormalises_over_yes_and_no():
    assert verdict_probability(with_verdict("checked. ", 0.75)) == pytest.approx(0.75)


def test_verdict_probability_with_lead_in_and_partial_tokens():
    # The verdict token carries the brace ("{Y"), and a character tokenizer splits "Yes".
    tokens = ("\\boxed", "{Y", "es", "}")
    top = ({}, {"{Y": math.log(0.6), "{N": math.log(0.2), "Y": math.log(0.2)}, {}, {})
    assert verdict_probability(Generation("".join(tokens), tokens, top)) == pytest.approx(0.75)


@pytest.mark.parametrize(
    "generation",
    [
        Generation("\\boxed{Yes}"),  # no token probabilities
        Generation("no box", ("no box",), ({"no box": 0.0},)),
        Generation("\\boxed{", ("\\boxed{",), ({},)),  # nothing after the brace
        Generation("\\boxed{7}", ("\\boxed{", "7", "}"), ({}, {"7": -0.1, "8": -2.0}, {})),
    ],
)
def test_verdict_probability_is_none_when_it_cannot_be_read(generation):
    assert verdict_probability(generation) is None


# --------------------------------------------------------------------------- picking


def cand(answer: str | None, score: float | None = None) -> Candidate:
    return Candidate(f"... \\boxed{{{answer}}}" if answer else "rambling", answer, score)


def test_pick_vote_counts_normalised_answers_and_breaks_ties_by_order():
    assert pick_vote([cand("7"), cand("8"), cand("$8$")]).answer == "8"
    assert pick_vote([cand("7"), cand("8")]).answer == "7"
    assert pick_vote([cand(None), cand(None)]) == cand(None)


def test_pick_vote_weighted_and_pick_best():
    pool = [cand("7", 0.2), cand("7", 0.2), cand("8", 0.9)]
    assert pick_vote(pool).answer == "7"
    assert pick_vote(pool, weighted=True).answer == "8"
    assert pick_best(pool).answer == "8"
    assert pick_best([cand("1", 0.5), cand("2", 0.5)]).answer == "1"


# --------------------------------------------------------------------------- strategies


def test_single_returns_the_first_of_n_samples(scripted):
    backend = scripted(lambda text, i, p: f"{text} \\boxed{{{i}}}")
    attempts = run_strategy("single", backend, TASKS, settings(sampling=SamplingParams(n=3, temperature=1.0)))
    assert [a.final.answer for a in attempts] == ["0", "0"]
    assert [c.answer for c in attempts[1].candidates] == ["0", "1", "2"]
    assert len(backend.calls) == 1


def test_majority_picks_the_most_frequent_answer(scripted):
    backend = scripted(lambda text, i, p: ["\\boxed{3}", "\\boxed{5}", "\\boxed{5}"][i])
    attempts = run_strategy("majority", backend, TASKS[:1], settings(sampling=SamplingParams(n=3, temperature=1.0)))
    assert attempts[0].final.answer == "5"


def judge_likes(good: str, p_good: float = 0.9, p_bad: float = 0.2):
    def respond(text: str, i: int, params: SamplingParams) -> Generation | str:
        if text.startswith("JUDGE|"):
            return with_verdict("hm ", p_good if text.endswith(f"|{good}") else p_bad)
        return ["\\boxed{1}", "\\boxed{1}", f"\\boxed{{{good}}}", "no answer here"][i]

    return respond


def test_best_of_n_uses_verdict_probabilities_and_skips_unanswered(scripted):
    backend = scripted(judge_likes("2"))
    attempts = run_strategy("best_of_n", backend, TASKS, settings(sampling=SamplingParams(n=4, temperature=1.0)))
    assert [a.final.answer for a in attempts] == ["2", "2"]
    scores = [c.score for c in attempts[0].candidates]
    assert scores == pytest.approx([0.2, 0.2, 0.9, 0.0])
    # Two tasks x three answered candidates judged greedily in one call, none for "no answer".
    judged = backend.prompts("JUDGE|")
    assert len(judged) == 6 and all(not p.endswith("no answer here") for p in judged)
    judge_params = [p for texts, p in backend.calls if texts[0].startswith("JUDGE|")]
    assert len(judge_params) == 1 and judge_params[0].greedy and judge_params[0].top_logprobs > 0


def test_weighted_majority_lets_confident_verdicts_outvote_numbers(scripted):
    sampled = settings(sampling=SamplingParams(n=4, temperature=1.0))
    weighted = run_strategy("weighted_majority", scripted(judge_likes("2", 0.95, 0.3)), TASKS[:1], sampled)
    assert weighted[0].final.answer == "2"  # 0.95 > 0.3 + 0.3
    plain = run_strategy("majority", scripted(judge_likes("2", 0.95, 0.3)), TASKS[:1], sampled)
    assert plain[0].final.answer == "1"


def test_best_of_n_falls_back_to_sampled_verdicts_without_probabilities(scripted):
    def respond(text: str, i: int, params: SamplingParams) -> str:
        if text.startswith("JUDGE|"):
            if params.greedy:
                return "\\boxed{Yes}"  # no token probabilities, so this does not decide
            yes_votes = 3 if text.endswith("|2") else 1
            return "\\boxed{Yes}" if i < yes_votes else "\\boxed{No}"
        return ["\\boxed{1}", "\\boxed{2}"][i]

    backend = scripted(respond)
    attempts = run_strategy(
        "best_of_n", backend, TASKS[:1], settings(sampling=SamplingParams(n=2, temperature=1.0), judge_samples=4)
    )
    assert [c.score for c in attempts[0].candidates] == [0.25, 0.75]
    assert attempts[0].final.answer == "2"
    sampled = [p for texts, p in backend.calls if texts[0].startswith("JUDGE|") and not p.greedy]
    assert len(sampled) == 1 and sampled[0].n == 4
    assert len(attempts[0].candidates[1].judge) == 5  # the greedy verdict and four samples


def reflective(verdicts: dict[str, str]):
    """Answers 'wrong' first, 'right' after one revision; the judge says verdicts[answer]."""

    def respond(text: str, i: int, params: SamplingParams) -> str:
        if text.startswith("JUDGE|"):
            return f"\\boxed{{{verdicts[text.rsplit('|', 1)[1]]}}}"
        if text.startswith("REDO|"):
            return "\\boxed{right}"
        if text.startswith("REDO-COT|"):
            return "\\boxed{right}"
        return "\\boxed{wrong}" if "q1" in text else "I am not sure"

    return respond


def test_reflection_revises_until_yes_and_records_rounds(scripted):
    backend = scripted(reflective({"wrong": "No", "right": "Yes"}))
    first, second = run_strategy("reflection", backend, TASKS, settings(sampling=SamplingParams(n=5)))
    assert first.final.answer == "right" and second.final.answer == "right"
    assert [r["verdict"] for r in first.rounds] == ["No", "Yes"]
    assert first.rounds[1]["prompt"] == "REDO|q1|wrong"
    # Without an extracted answer the whole attempt is shown, and no judge is asked.
    assert second.rounds[0]["verdict"] == "no-answer"
    assert second.rounds[1]["prompt"] == "REDO-COT|q2|I am not sure"
    assert all(p.n == 1 and p.greedy for _, p in backend.calls)
    assert backend.prompts("JUDGE|") == ["JUDGE|q1|wrong", "JUDGE|q1|right", "JUDGE|q2|right"]


def test_reflection_stops_after_k_rounds_and_keeps_the_last_answer(scripted):
    backend = scripted(reflective({"wrong": "No", "right": "No"}))
    (attempt,) = run_strategy("reflection", backend, TASKS[:1], settings(rounds=2))
    assert len(attempt.rounds) == 3 and attempt.final.answer == "right"
    assert len(backend.prompts("JUDGE|")) == 2 and len(backend.prompts("REDO|")) == 2
    assert "verdict" not in attempt.rounds[-1]  # the last revision is not judged


def test_reflection_accepts_a_yes_at_once(scripted):
    backend = scripted(reflective({"wrong": "Yes"}))
    (attempt,) = run_strategy("reflection", backend, TASKS[:1], settings())
    assert attempt.final.answer == "wrong" and len(attempt.rounds) == 1


def test_unknown_strategy_and_bad_settings(scripted):
    with pytest.raises(ValueError, match="unknown strategy"):
        run_strategy("beam", scripted(lambda *a: ""), TASKS, settings())
    for bad in ({"rounds": -1}, {"judge_samples": 0}, {"judge_temperature": 0.0}):
        with pytest.raises(ValueError):
            settings(**bad)


def test_empty_task_list(scripted):
    backend = scripted(lambda *a: "")
    for name in ("single", "reflection", "best_of_n", "majority", "weighted_majority"):
        assert run_strategy(name, backend, [], settings()) == []
