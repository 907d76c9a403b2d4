"""Tests for sparkrl.diagnostics: the phase clock, groups without signal and when to warn."""

from __future__ import annotations

import pytest

from sparkrl.diagnostics import (
    PhaseClock,
    SignalWatch,
    mean_per_key,
    no_signal_groups,
    no_signal_warning,
    round_times,
    share_class,
)


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_clock_sums_phases_between_takes_beside_the_wall_time():
    fake = FakeTime()
    clock = PhaseClock(now=fake)
    fake.now = 5.0
    clock.restart()
    with clock.timed("generation"):
        fake.now += 2.0
    clock.add("generation", 1.0)
    fake.now += 4.0
    assert clock.take() == {"generation": 3.0, "interval": 6.0}
    fake.now += 1.5
    assert clock.take() == {"interval": 1.5}


def test_round_times_split_the_steps_into_their_phases():
    spent = {"generation": 3.0, "scoring": 1.0, "trl_round": 5.0, "recycling": 0.5, "steps": 9.0, "interval": 10.0}
    times = round_times(spent)
    assert times == {"generation": 3.0, "scoring": 1.0, "preparation": 1.0, "recycling": 0.5, "optimizer": 3.5,
                     "interval": 10.0}
    assert sum(v for k, v in times.items() if k != "interval") <= times["interval"]
    assert all(v == 0.0 for v in round_times({}).values())
    # self-judged scoring runs inside scoring: its own phase, taken out of scoring's
    judged = round_times({**spent, "self_reward": 0.75})
    assert judged["self_reward"] == 0.75 and judged["scoring"] == 0.25 and judged["preparation"] == 1.0
    assert "self_reward" not in times


def test_groups_without_signal_are_counted_per_kind():
    tasks = ["policy"] * 6 + ["pointwise"] * 3 + ["reflection"] * 3
    advantages = [0.0, 1e-12, -1e-9, 0.7, -0.7, 0.0] + [0.0] * 3 + [0.5, -0.5, 0.0]
    assert no_signal_groups(advantages, tasks, 3) == {"policy": (1, 2), "recycled": (1, 2)}
    assert no_signal_groups([], [], 4) == {}
    with pytest.raises(ValueError, match="groups of 4"):
        no_signal_groups([0.0] * 6, ["policy"] * 6, 4)


def test_shares_are_averaged_per_round_over_the_rounds_that_have_them():
    rounds = [{"all": 1.0, "policy": 1.0}, {"all": 0.5, "recycled": 0.5}, {"all": 0.0, "policy": 0.0}]
    assert mean_per_key(rounds) == {"all": 0.5, "policy": 0.5, "recycled": 0.5}
    assert mean_per_key([]) == {}


def test_warnings_come_on_the_first_round_then_on_a_class_change_or_after_a_while():
    watch = SignalWatch(every=5)
    warned = [r for r, share in enumerate([0.2, 1.0, 1.0, 1.0, 0.8, 0.8, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.1, 1.0])
              if watch.should_warn("policy", share, r)]
    # first "all" (1), then "most" (4), "all" again (6), five rounds on (11), back after "some" (13)
    assert warned == [1, 4, 6, 11, 13]
    assert watch.should_warn("recycled", 1.0, 14)  # kinds are watched apart
    assert [share_class(s) for s in (0.0, 0.49, 0.5, 0.99, 1.0)] == ["some", "some", "most", "most", "all"]


@pytest.mark.parametrize(("rewards", "no_answer", "hint"), [
    ([0.0] * 8, 6, "answer format"),
    ([0.0] * 8, 0, "too hard"),
    ([1.0] * 8, 0, "too easy"),
    ([1.0, 0.0] * 4, 1, "num_generations"),
])
def test_the_warning_says_what_the_verdicts_suggest(rewards, no_answer, hint):
    message = no_signal_warning("policy", 2, 2, 7, rewards, no_answer)
    assert message.startswith("[sparkrl] round 7: 2 of 2 policy groups (100%)") and "\n" not in message
    assert hint in message and f"{no_answer} had no extractable answer" in message


@pytest.mark.parametrize(("rewards", "hint", "not_said"), [
    ([0.0] * 8, "every recycled rollout failed", "already easy"),
    ([1.0] * 8, "every recycled rollout was right", "too hard"),
    ([1.0, 0.0] * 4, "num_generations", "too hard"),
])
def test_the_recycled_hint_follows_whether_their_rollouts_were_all_right_or_all_wrong(rewards, hint, not_said):
    message = no_signal_warning("recycled", 1, 2, 7, rewards, 0)
    assert message.startswith("[sparkrl] round 7: 1 of 2 recycled groups (50%)") and "\n" not in message
    assert hint in message and not_said not in message
