"""Self-judged rewards, pure parts: pair choice, win rates, majority, scoring with a scripted
judge, agreement metrics and the min_agreement gate."""

from __future__ import annotations

import json
import random
import re
from dataclasses import replace

import pytest

from sparkrl.self_reward import (
    JudgeOutput,
    RolloutGroup,
    SelfRewardConfig,
    SelfRewardState,
    agreement,
    majority_rewards,
    mean_spearman,
    score_groups,
    select_pairs,
    spearman,
    win_rates,
)

from compact_templates import COMPACT_TEMPLATES

# A second paraphrase of each judge template: self-judging must ask with the first one.
TEMPLATES = replace(
    COMPACT_TEMPLATES,
    pointwise=(*COMPACT_TEMPLATES.pointwise, "OTHER|{question}|{candidate}"),
    pairwise=(*COMPACT_TEMPLATES.pairwise, "OTHER|{question}|{candidate_a}|{candidate_b}"),
)


class ScriptedJudge:
    """Answers each prompt with `decide(fields)`; records every call."""

    def __init__(self, decide):
        self.decide = decide
        self.calls = []

    def __call__(self, prompts):
        self.calls.append(list(prompts))
        return JudgeOutput(tuple(self.decide(p.text.split("|")) for p in prompts), generated_tokens=3 * len(prompts))


def boxed(*answers):
    return tuple(f"so \\boxed{{{a}}}" if a is not None else "no idea" for a in answers)


def test_pairs_are_all_distinct_candidates_when_few_and_a_seeded_sample_when_many():
    keys = ["1", "2", None, "1", "3"]
    assert select_pairs(keys, 8, random.Random(0)) == [(0, 1), (0, 4), (1, 3), (1, 4), (3, 4)]  # no None, no 1 vs 1
    many = [str(i) for i in range(8)]  # 28 pairs
    drawn = select_pairs(many, 5, random.Random(3))
    assert len(drawn) == len(set(drawn)) == 5 and all(i < j for i, j in drawn)
    assert drawn == select_pairs(many, 5, random.Random(3)) != select_pairs(many, 5, random.Random(4))


def test_a_judge_that_always_says_a_gives_every_rollout_win_rate_one_half():
    judge = ScriptedJudge(lambda fields: 1.0)
    config = SelfRewardConfig(mode="pairwise")
    scores = score_groups([RolloutGroup("q", boxed(1, 2, 3, None))], config, judge, TEMPLATES, seed=0)
    assert scores.rewards == ((0.5, 0.5, 0.5, 0.0),)  # nothing to show: 0
    asked = [tuple(p.text.split("|")[2:]) for p in judge.calls[0]]
    assert len(asked) == 6 and {(b, a) for a, b in asked} == set(asked)  # every pair in both orders
    assert all(p.options == ("A", "B") and p.text.startswith("PAIR|") for p in judge.calls[0])  # first template
    assert (scores.judge_calls, scores.generated_tokens) == (6, 18)


def test_pairwise_win_rates_follow_the_judges_preference_and_ties_are_not_compared():
    # the judge prefers the larger number, with confidence 0.9
    judge = ScriptedJudge(lambda f: 0.9 if int(f[2]) > int(f[3]) else 0.1)
    group = RolloutGroup("q", boxed(3, 1, 3, 2))
    (rewards,) = score_groups([group], SelfRewardConfig(mode="pairwise"), judge, TEMPLATES, seed=0).rewards
    assert rewards[0] == rewards[2] == pytest.approx(0.9) and rewards[1] == pytest.approx(0.1)
    assert rewards[3] == pytest.approx((2 * 0.9 + 4 * 0.1) / 6)  # beats the 1, loses to both 3s, in both orders
    assert len(judge.calls[0]) == 6  # 3 vs 3 is a tie, not asked; identical prompts are asked once
    same = score_groups([RolloutGroup("q", boxed(7, "7.0", 7))], SelfRewardConfig(mode="pairwise"), judge, TEMPLATES, 0)
    assert same.rewards == ((0.5, 0.5, 0.5),) and same.judge_calls == 0  # all agree: no advantage


def test_pairwise_keeps_to_max_pairs_per_group():
    judge = ScriptedJudge(lambda f: 1.0)
    config = SelfRewardConfig(mode="pairwise", max_pairs=3)
    score_groups([RolloutGroup("q", boxed(*range(8)))], config, judge, TEMPLATES, seed=1)
    assert len(judge.calls[0]) == 2 * 3


def test_pointwise_scores_are_the_judges_probabilities_asked_once_per_distinct_prompt():
    judge = ScriptedJudge(lambda f: {"4": 0.8, "5": 0.3}[f[2]])
    groups = [RolloutGroup("2+2", boxed(4, 5, 4, None)), RolloutGroup("3+2", boxed(5))]
    scores = score_groups(groups, SelfRewardConfig(), judge, TEMPLATES, seed=0)
    assert scores.rewards == ((0.8, 0.3, 0.8, 0.0), (0.3,))
    assert [p.text for p in judge.calls[0]] == ["JUDGE|2+2|4", "JUDGE|2+2|5", "JUDGE|3+2|5"]
    assert all(p.options == ("Yes", "No") for p in judge.calls[0])
    # show: response puts the whole rollout in front of the judge
    whole = ScriptedJudge(lambda f: 1.0)
    score_groups([RolloutGroup("q", ("a \\boxed{1}",))], SelfRewardConfig(show="response"), whole, TEMPLATES, 0)
    assert whole.calls[0][0].text == "JUDGE|q|a \\boxed{1}"


def test_majority_rewards_the_most_frequent_normalised_answer():
    assert majority_rewards(["4", "4.0", "5", None]) == [1.0, 1.0, 0.0, 0.0]
    assert majority_rewards(["4", "5", None]) == [1.0, 1.0, 0.0]  # a tie: both top answers
    assert majority_rewards([None, None]) == [0.0, 0.0]
    judge = ScriptedJudge(lambda f: pytest.fail("majority needs no judge"))
    scores = score_groups([RolloutGroup("q", boxed(6, 6, 9, None))], SelfRewardConfig(mode="majority"), judge,
                          TEMPLATES, seed=0)
    assert scores.rewards == ((1.0, 1.0, 0.0, 0.0),) and scores.judge_calls == 0


def test_win_rates_count_each_comparison_for_both_sides():
    assert win_rates(3, [(0, 1, 0.75), (1, 0, 0.5)]) == [0.625, 0.375, None]


def test_agreement_and_spearman_on_hand_made_numbers():
    assert agreement([0.9, 0.2, 0.6, 0.4], [1.0, 0.0, 0.0, 1.0]) == 0.5
    assert agreement([0.5, 0.49], [1.0, 0.0]) == 1.0  # 0.5 counts as "correct"
    assert spearman([0.1, 0.4, 0.35, 0.8], [0, 1, 0, 1]) == pytest.approx(0.8944, abs=1e-4)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([0.3, 0.3, 0.9], [0, 1, 1]) == pytest.approx(0.5)  # ties take their average rank
    assert spearman([0.2, 0.7], [1, 1]) is None and spearman([0.5, 0.5], [0, 1]) is None
    groups = [([0.1, 0.9], [0, 1]), ([0.4, 0.4], [0, 1]), ([0.9, 0.1, 0.5], [0, 1, 1])]
    assert mean_spearman(groups) == pytest.approx((1.0 + spearman([0.9, 0.1, 0.5], [0, 1, 1])) / 2)
    assert mean_spearman([([0.2], [1])]) is None
    with pytest.raises(ValueError):
        agreement([], [])


def test_the_gate_opens_once_agreement_reaches_min_agreement_and_the_state_round_trips():
    config = SelfRewardConfig(min_agreement=0.75, monitor_every=2)
    state = SelfRewardState.initial(config)
    assert not state.active and SelfRewardState.initial(SelfRewardConfig()).active
    monitored = [state.next_round(config, has) for has in (True, False, True, True, True)]
    assert monitored == [True, False, False, True, False]  # every 2nd round that has labelled rollouts
    state.record(config, 0, [([0.9, 0.1], [1, 1])])
    assert not state.active and state.history[-1]["agreement"] == 0.5
    entry = state.record(config, 3, [([0.9, 0.1], [1, 0]), ([0.6, 0.8], [1, 1])])
    assert state.active and entry == {"round": 3, "agreement": 1.0, "spearman": 1.0, "rollouts": 4}
    state.record(config, 5, [([0.1], [1])])
    assert state.active  # once open, it stays open
    assert SelfRewardState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"mode": "vote"}, "mode"),
        ({"show": "all"}, "show"),
        ({"samples": 0}, "samples"),
        ({"max_pairs": 0}, "max_pairs"),
        ({"monitor_every": 0}, "monitor_every"),
        ({"temperature": 0.0}, "temperature"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"min_agreement": 1.5}, "min_agreement"),
    ],
)
def test_bad_settings_are_refused(fields, message):
    from sparkrl.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(message)):
        SelfRewardConfig(**fields)
