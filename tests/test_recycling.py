"""Tests for sparkrl.recycling: the authors' selection rules, our balancing and edge cases,
property tests over random groups, and a run on real GSM8K model solutions."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparkrl.recycling import Group, RecyclingConfig, RecyclingStats, Rollout, recycle
from sparkrl.rows import Example
from sparkrl.templates import reflection_pool
from sparkrl.verification import extract_final_answer

UNCAPPED = RecyclingConfig(judge_items_per_group=None, reflection_items_per_group=None)
AUTHORS = dataclasses.replace(UNCAPPED, balance_labels=False, balance_positions=False)
POSITIVE = {"Yes": True, "No": False, "A": True, "B": False}


def _group(rewards, answers=None, gold="42", question="What is six times seven?", **kw) -> Group:
    answers = answers or ["42" if r else str(i) for i, r in enumerate(rewards)]
    rollouts = tuple(Rollout(f"reasoning {i}: so {a}", float(r), a) for i, (r, a) in enumerate(zip(rewards, answers)))
    return Group(question, gold, rollouts, **kw)


def _norm(text):
    return " ".join(text.split())


def _shows_number(text, answer):
    """Whether a plain answer occurs in a text as a whole number or word (commas ignored)."""
    return re.search(rf"(?<![0-9A-Za-z.]){re.escape(answer)}(?![0-9A-Za-z]|\.[0-9])", text.replace(",", "")) is not None


def _pool(config, item):
    mode = item.source["mode"]
    t = config.templates
    return {"yes_no": t.pointwise, "letter": t.pointwise_letter, "pairwise": t.pairwise}.get(mode) or reflection_pool(
        t, mode)


def check_items(groups, items, config):
    """The invariants every recycled item must satisfy, whatever the rules chose."""
    per_group = Counter()
    for item in items:
        src = item.source
        group = groups[src["group"]]
        rollouts = [group.rollouts[i] for i in src["rollouts"]]
        template = _pool(config, item)[src["template"]]
        assert item.images == group.images and src["group_source"] == dict(group.source)
        per_group[src["group"], item.task == "reflection"] += 1
        if item.task == "pointwise":
            (r,) = rollouts
            assert r.answer is not None
            assert (r.reward >= config.correct_at) == POSITIVE[item.answer]
            assert r.reward >= config.correct_at or r.reward <= config.wrong_at
            assert item.answer in (("A", "B") if src["mode"] == "letter" else ("Yes", "No"))
            # The prompt is the template filled with the question and the final answer only.
            assert item.question == template.format(question=group.question, candidate=r.answer)
        elif item.task == "pairwise":
            a, b = rollouts
            correct = [r.reward >= config.correct_at for r in rollouts]
            wrong = [r.reward <= config.wrong_at for r in rollouts]
            assert sorted(correct) == [False, True] and sorted(wrong) == [False, True]
            assert item.answer == ("A" if correct[0] else "B")
            assert _norm(a.answer) != _norm(b.answer)
            assert item.question == template.format(
                question=group.question, candidate_a=a.answer, candidate_b=b.answer)
        else:
            assert item.task == "reflection" and item.answer == group.answer
            (r,) = rollouts
            assert r.reward <= config.wrong_at
            shown = r.text if src["mode"] == "cot" else r.answer
            assert shown is not None and item.question == template.format(question=group.question, attempt=shown)
            if src["mode"] == "cot" and config.drop_cot_showing_gold:
                gold = extract_final_answer(group.answer) or group.answer
                assert not _shows_number(shown, gold)
        if item.task != "reflection":
            # The gold answer is only in a judge prompt if the template, question or a shown answer holds it.
            visible = template + group.question + "".join(r.answer for r in rollouts)
            if group.answer not in visible:
                assert group.answer not in item.question
    assert all(n == 1 for n in per_group.values())


def check_balance(items, config):
    labels = Counter((i.source["mode"], i.answer) for i in items if i.task in ("pointwise", "pairwise"))
    if config.balance_labels:
        assert abs(labels["yes_no", "Yes"] - labels["yes_no", "No"]) <= 1
        assert abs(labels["letter", "A"] - labels["letter", "B"]) <= 1
    if config.balance_positions:
        assert abs(labels["pairwise", "A"] - labels["pairwise", "B"]) <= 1
    if config.balance_kinds:
        tasks = Counter(i.task for i in items)
        assert abs(tasks["pointwise"] - tasks["pairwise"]) <= 1


# --- the authors' rules (balancing off, no caps) -------------------------------------------

def test_all_correct_group_gives_one_positive_pointwise_item_and_no_reflection():
    items, stats = recycle([_group([1, 1, 1, 1])], AUTHORS, seed=0)
    assert [(i.task, POSITIVE[i.answer]) for i in items] == [("pointwise", True)]
    assert stats.outcomes == {"all_correct": 1}


def test_all_wrong_group_gives_a_negative_pointwise_item_and_a_reflection():
    group = _group([0, 0, 0], answers=[None, "7", "  "])
    items, stats = recycle([group], AUTHORS, seed=1)
    assert [i.task for i in items] == ["pointwise", "reflection"]
    assert items[0].source["rollouts"] == [1] and not POSITIVE[items[0].answer]
    assert stats.rollouts_without_answer == 2
    check_items([group], items, AUTHORS)


def test_group_without_any_extractable_answer_gives_no_judge_item_but_a_cot_reflection():
    group = _group([0, 0], answers=[None, None])
    items, stats = recycle([group], AUTHORS, seed=0)
    assert [(i.task, i.source["mode"]) for i in items] == [("reflection", "cot")]
    assert stats.skipped["judge-no-candidate"] == 1
    strict = dataclasses.replace(AUTHORS, reflect_unextracted=False)
    items, stats = recycle([group], strict, seed=0)
    assert items == [] and stats.skipped["reflection-no-attempt"] == 1


@pytest.mark.parametrize("prob,task", [(0.0, "pairwise"), (1.0, "pointwise")])
def test_mixed_group_judge_kind_follows_the_probability(prob, task):
    config = dataclasses.replace(AUTHORS, mixed_pointwise_prob=prob)
    groups = [_group([1, 0, 1, 0, 0])] * 20
    items, _ = recycle(groups, config, seed=3)
    assert Counter(i.task for i in items) == {task: 20, "reflection": 20}
    check_items(groups, items, config)


def test_mixed_groups_split_about_30_70_between_pointwise_and_pairwise():
    groups = [_group([1, 0, 0, 1])] * 1000
    items, _ = recycle(groups, AUTHORS, seed=11)
    share = Counter(i.task for i in items)["pointwise"] / 1000
    assert 0.25 < share < 0.35


def test_reflection_modes_split_evenly_and_forced_modes_are_respected():
    both = [_group([0, 1, 0])] * 10
    only_cot = [_group([0, 1], answers=[None, "42"])] * 3
    items, stats = recycle(both + only_cot, UNCAPPED, seed=5)
    modes = {i.source["group"]: i.source["mode"] for i in items if i.task == "reflection"}
    assert all(modes[g] == "cot" for g in range(10, 13))
    assert Counter(modes.values()) == {"cot": 7, "answer": 6}
    assert stats.modes["cot"] == 7


def test_same_answer_on_both_sides_never_makes_a_pair_and_is_counted():
    group = _group([1, 0], answers=["5", " 5 "], gold="5.0")
    config = dataclasses.replace(AUTHORS, mixed_pointwise_prob=0.0)
    items, stats = recycle([group], config, seed=0)
    assert stats.skipped["pair-same-answer"] == 1
    assert [i.task for i in items] == ["pointwise", "reflection"]
    only_pairwise = dataclasses.replace(config, kinds=("pairwise",))
    assert recycle([group], only_pairwise, seed=0)[0] == []


def test_both_orders_gives_each_pair_at_a_and_at_b():
    groups = [_group([1, 0, 0, 1], question=f"q{i}") for i in range(5)] + [_group([1, 1], question="all right")]
    config = dataclasses.replace(UNCAPPED, mixed_pointwise_prob=0.0, pairwise_both_orders=True, kinds=("pointwise", "pairwise"))
    items, stats = recycle(groups, config, seed=3)
    pairwise = [i for i in items if i.task == "pairwise"]
    assert len(pairwise) == 10 and stats.items["pairwise"] == 10
    by_group = {}
    for item in pairwise:
        by_group.setdefault(item.source["group"], []).append(item)
    for group, (first, second) in by_group.items():
        assert sorted([first.answer, second.answer]) == ["A", "B"]
        # the same two rollouts, shown in swapped places
        assert first.source["rollouts"] == second.source["rollouts"][::-1]
    assert [i.task for i in items if i.source["group"] == 5] == ["pointwise"]
    # caps count both items of a pair
    capped = dataclasses.replace(config, max_judge_items=3)
    assert len(recycle(groups, capped, seed=3)[0]) == 3
    # off: one item per mixed group, as before
    single = dataclasses.replace(config, pairwise_both_orders=False)
    assert sum(i.task == "pairwise" for i in recycle(groups, single, seed=3)[0]) == 5


def test_wrong_answer_equal_to_gold_is_treated_as_a_reward_error():
    group = _group([0, 0], answers=["42", "41"])
    items, stats = recycle([group], AUTHORS, seed=0)
    assert stats.skipped["wrong-answer-equals-gold"] == 1
    assert all(i.source["rollouts"] == [1] for i in items)
    kept = dataclasses.replace(AUTHORS, drop_wrong_matching_gold=False)
    assert "wrong-answer-equals-gold" not in recycle([group], kept, seed=0)[1].skipped


def test_a_wrong_attempt_whose_text_shows_the_gold_is_never_a_cot_attempt():
    # Rollout 0 reached 42, then went on to 84: its trace would hand the answer over.
    group = Group("What is 6*7?", "6*7 = <<6*7=42>>42\n#### 42", (
        Rollout("6*7 = 42, and doubled that is 84", 0.0, "84"),
        Rollout("6*7 = 43", 0.0, "43"),
        Rollout("six sevens are 142", 0.0, None),
        Rollout("6*7 = 42 is my guess, I think", 0.0, None),
    ))
    config = dataclasses.replace(UNCAPPED, reflection_modes=("cot",), kinds=("reflection",))
    shown = Counter()
    for seed in range(40):
        items, stats = recycle([group], config, seed=seed)
        shown.update(i.source["rollouts"][0] for i in items)
        assert stats.skipped["cot-shows-gold"] == 2
    assert set(shown) == {1, 2}  # whole tokens only: "142" does not show 42
    # Such an attempt may still be shown by its final answer alone.
    answer_only = dataclasses.replace(config, reflection_modes=("answer",))
    assert {recycle([group], answer_only, seed=s)[0][0].source["rollouts"][0] for s in range(40)} == {0, 1}
    kept = dataclasses.replace(config, drop_cot_showing_gold=False)
    assert "cot-shows-gold" not in recycle([group], kept, seed=0)[1].skipped


def test_a_group_whose_only_wrong_trace_shows_the_gold_reflects_in_answer_mode():
    group = _group([1, 0], answers=["42", "84"])
    group = dataclasses.replace(group, rollouts=(group.rollouts[0], Rollout("42, doubled: 84", 0.0, "84")))
    items, stats = recycle([group] * 4, UNCAPPED, seed=0)
    assert [i.source["mode"] for i in items if i.task == "reflection"] == ["answer"] * 4
    assert stats.skipped["cot-shows-gold"] == 4
    check_items([group] * 4, items, UNCAPPED)


def test_rewards_between_the_thresholds_are_not_used():
    group = _group([0.5, 0.5, 1.0])
    items, stats = recycle([group], AUTHORS, seed=0)
    assert stats.skipped["reward-ambiguous"] == 2 and stats.outcomes == {"all_correct": 1}
    assert [i.source["rollouts"] for i in items] == [[2]]


def test_zero_groups_give_nothing():
    items, stats = recycle([], RecyclingConfig(), seed=0)
    assert items == [] and stats.groups == 0 and stats.items == {"pointwise": 0, "pairwise": 0, "reflection": 0}


@pytest.mark.parametrize("kinds", [("pointwise",), ("pairwise",), ("reflection",), ("pairwise", "reflection")])
def test_only_enabled_kinds_are_built(kinds):
    groups = [_group([1, 1]), _group([0, 0]), _group([1, 0, 0])] * 4
    config = dataclasses.replace(UNCAPPED, kinds=kinds)
    items, _ = recycle(groups, config, seed=2)
    assert {i.task for i in items} == set(kinds)
    check_items(groups, items, config)


def test_switching_reflection_off_leaves_judge_items_unchanged():
    groups = [_group([1, 0, 0, 1]), _group([0, 0]), _group([1, 1, 1])] * 5
    everything, _ = recycle(groups, RecyclingConfig(), seed=9)
    judge_only, _ = recycle(groups, dataclasses.replace(RecyclingConfig(), kinds=("pointwise", "pairwise")), seed=9)
    assert [i for i in everything if i.task != "reflection"] == judge_only


def test_provenance_and_images_are_passed_through():
    group = _group([1, 0], images=("a.png", "b.png"), source={"dataset": "x.jsonl", "row": 4})
    items, _ = recycle([group], UNCAPPED, seed=0)
    assert items and all(i.images == ("a.png", "b.png") for i in items)
    assert all(i.source["group_source"] == {"dataset": "x.jsonl", "row": 4} for i in items)
    keys = {"group", "rollouts", "mode", "template", "group_source"}
    assert all(set(i.source) == keys for i in items)


# --- balancing and caps -----------------------------------------------------------------------

def test_all_correct_batch_is_balanced_down_by_dropping_the_majority_label():
    groups = [_group([1, 1, 1])] * 10
    assert len(recycle(groups, AUTHORS, seed=0)[0]) == 10
    items, stats = recycle(groups, UNCAPPED, seed=0)
    assert 1 <= len(items) <= 2 and stats.skipped["judge-balance"] == 10 - len(items)
    # One variant, 7 Yes against 3 No: all 3 No and 4 of the 7 Yes are kept.
    groups = [_group([1, 1])] * 7 + [_group([0, 0])] * 3
    config = dataclasses.replace(UNCAPPED, letter_prob=0.0)
    labels = Counter(i.answer for i in recycle(groups, config, seed=2)[0] if i.task == "pointwise")
    assert labels == {"Yes": 4, "No": 3}


def test_label_balance_carried_from_call_to_call_holds_over_a_run():
    # A strong policy: every round has mostly all-correct groups (only "Yes" possible) and
    # now and then an all-wrong one. Within each call the labels are balanced either way, but
    # only the carried balance keeps the run's total within one.
    config = dataclasses.replace(UNCAPPED, letter_prob=0.0, kinds=("pointwise",))
    rounds = [[_group([1, 1])] * 3 + ([_group([0, 0])] if r % 5 == 4 else []) for r in range(20)]
    alone = Counter(i.answer for r, groups in enumerate(rounds) for i in recycle(groups, config, seed=r)[0])
    assert alone["Yes"] - alone["No"] >= 10  # one surplus "Yes" in nearly every round
    total, balance = Counter(), {}
    for r, groups in enumerate(rounds):
        items, stats = recycle(groups, config, seed=r, label_balance=balance)
        total.update(i.answer for i in items)
        balance = stats.label_balance
        assert balance.get("yes_no", 0) == total["Yes"] - total["No"]
        assert abs(balance.get("yes_no", 0)) <= 1
    assert total["No"] == 4 and total["Yes"] in (4, 5)
    # A balance that starts further out only takes items that bring it back.
    items, stats = recycle([_group([1, 1]), _group([0, 0])], config, seed=0, label_balance={"yes_no": 3})
    assert [i.answer for i in items] == ["No"] and stats.label_balance == {"yes_no": 2}
    # Without balancing nothing is carried into the choice.
    authors = dataclasses.replace(config, balance_labels=False)
    assert len(recycle(rounds[0], authors, seed=0, label_balance={"yes_no": 1})[0]) == 3


def test_mixed_groups_choose_the_side_that_restores_label_balance():
    groups = [_group([1, 1])] * 6 + [_group([1, 0])] * 30
    config = dataclasses.replace(UNCAPPED, mixed_pointwise_prob=1.0, letter_prob=0.0, kinds=("pointwise",))
    items, stats = recycle(groups, config, seed=4)
    assert Counter(i.answer for i in items) == {"Yes": 18, "No": 18}
    assert "judge-balance" not in stats.skipped


def test_pairwise_positions_are_exactly_balanced():
    groups = [_group([1, 0, 0])] * 40
    config = dataclasses.replace(UNCAPPED, mixed_pointwise_prob=0.0)
    labels = Counter(i.answer for i in recycle(groups, config, seed=8)[0] if i.task == "pairwise")
    assert labels == {"A": 20, "B": 20}


def test_kind_balancing_equalises_pointwise_and_pairwise():
    groups = [_group([1, 0])] * 20 + [_group([1, 1])] * 5 + [_group([0, 0])] * 5
    config = dataclasses.replace(UNCAPPED, balance_kinds=True)
    items, _ = recycle(groups, config, seed=1)
    tasks = Counter(i.task for i in items)
    assert abs(tasks["pointwise"] - tasks["pairwise"]) <= 1 and tasks["pairwise"] >= 10
    check_balance(items, config)


@pytest.mark.parametrize("n_groups", [16, 64, 200])
def test_default_caps_scale_with_the_number_of_groups(n_groups):
    # The authors keep 32 judge + 32 reflection items per 64 prompts: half a group each.
    groups = [_group([1, 0, 0, 1])] * n_groups
    items, stats = recycle(groups, RecyclingConfig(), seed=0)
    tasks = Counter(i.task for i in items)
    assert tasks["pointwise"] + tasks["pairwise"] == n_groups // 2
    assert tasks["reflection"] == n_groups // 2 and stats.skipped["reflection-cap"] == n_groups - n_groups // 2
    # an odd count rounds up, so one group (`sparkrl recycle` on a one-row file) still yields items
    assert RecyclingConfig().judge_cap(7) == RecyclingConfig().reflection_cap(7) == 4
    assert RecyclingConfig().judge_cap(1) == 1 and RecyclingConfig().judge_cap(0) == 0


def test_caps_absolute_and_per_group_keep_balance():
    groups = [_group([1, 0, 1, 0])] * 30 + [_group([0, 0])] * 10
    config = RecyclingConfig(max_judge_items=12, max_reflection_items=None, reflection_items_per_group=0.25)
    items, stats = recycle(groups, config, seed=6)
    tasks = Counter(i.task for i in items)
    assert tasks["pointwise"] + tasks["pairwise"] == 12 and tasks["reflection"] == 10
    assert stats.skipped["reflection-cap"] == 30
    check_balance(items, config)
    none = dataclasses.replace(config, max_judge_items=0, reflection_items_per_group=None)
    assert {i.task for i in recycle(groups, none, seed=6)[0]} == {"reflection"}


# --- validation ---------------------------------------------------------------------------

@pytest.mark.parametrize("changes", [
    {"kinds": ()}, {"kinds": ("pointwise", "pointwise")}, {"kinds": ("judge",)}, {"kinds": "pointwise"},
    {"reflection_modes": ("trace",)}, {"mixed_pointwise_prob": 1.5}, {"letter_prob": -0.1}, {"letter_prob": True}, {"correct_at": False},
    {"max_judge_items": -1}, {"max_reflection_items": 2.5}, {"max_judge_items": True},
    {"judge_items_per_group": math.inf}, {"reflection_items_per_group": -0.5}, {"correct_at": 0.0},
    {"wrong_at": math.nan}, {"templates": None}, {"max_prompt_tokens": 0}, {"max_prompt_tokens": 1.5},
    {"over_budget": "cut"}, {"min_attempt_tokens": -1}, {"min_attempt_tokens": None},
    {"over_budget": "answer", "reflection_modes": ("cot",)},
])
def test_bad_configs_are_rejected(changes):
    with pytest.raises(ValueError):
        RecyclingConfig(**changes)


@pytest.mark.parametrize(("changes", "message"), [
    ({"max_prompt_tokens": -5}, "max_prompt_tokens must be an int >= 1 or None, got -5"),
    ({"max_prompt_tokens": 0}, "max_prompt_tokens must be an int >= 1 or None, got 0"),
    ({"min_attempt_tokens": None}, "min_attempt_tokens must be an int >= 0, got None"),
    ({"min_attempt_tokens": -1}, "min_attempt_tokens must be an int >= 0, got -1"),
])
def test_budget_errors_say_what_is_accepted(changes, message):
    with pytest.raises(ValueError) as error:
        RecyclingConfig(**changes)
    assert str(error.value) == message


def test_rollout_and_group_validation():
    assert Rollout("t", 1, "  ").answer is None
    assert Rollout("t", True, " 7 ").answer == "7"
    for bad in (dict(text="t", reward=math.nan), dict(text=None, reward=1.0), dict(text="t", reward=1, answer=3)):
        with pytest.raises(ValueError):
            Rollout(**bad)
    with pytest.raises(ValueError, match="non-empty sequence"):
        Group("q", "1", ())
    with pytest.raises(ValueError, match="ground truth"):
        Group("q", "  ", (Rollout("t", 1.0),))
    assert isinstance(Group("q", "1", [Rollout("t", 1.0)], images=["x"]).images, tuple)


def test_stats_are_consistent_with_the_items_and_serialise():
    groups = [_group([1, 0, 0]), _group([0, 0], answers=[None, None]), _group([1, 1])] * 7
    items, stats = recycle(groups, RecyclingConfig(), seed=3)
    assert isinstance(stats, RecyclingStats)
    data = json.loads(json.dumps(stats.to_dict()))
    assert sum(data["items"].values()) == len(items) and data["groups"] == 21 and data["rollouts"] == 49
    assert data["outcomes"] == {"mixed": 7, "all_wrong": 7, "all_correct": 7}
    assert sum(data["labels"]["pointwise"].values()) == data["items"]["pointwise"]
    flat = stats.flat()
    assert flat["groups"] == 21 and flat["outcomes/mixed"] == 7 and flat["items/reflection"] == data["items"]["reflection"]
    assert all(isinstance(v, int) for v in flat.values())
    assert sum(v for k, v in flat.items() if k.startswith("labels/pairwise/")) == data["items"]["pairwise"]


# --- the length budget of recycled prompts ---------------------------------------------------

MARKER = re.compile(r"\[\.\.\. (\d+) tokens omitted \.\.\.\]")
LONG = "Six times seven: add seven six times. " + "Seven, fourteen, and so on. " * 60 + "So it is \\boxed{41}."
COT_ONLY = dataclasses.replace(UNCAPPED, kinds=("reflection",), reflection_modes=("cot",))


def _long_group(answer="41", question="What is six times seven?"):
    return Group(question, "42", (Rollout(LONG, 0.0, answer),))


def test_a_long_cot_attempt_is_shortened_with_a_visible_marker_and_counted():
    config = dataclasses.replace(COT_ONLY, max_prompt_tokens=250)
    (item,), stats = recycle([_long_group()], config, seed=0)
    assert len(item.question) > 4 * 200 and math.ceil(len(item.question) / 4) <= 250
    omitted = int(MARKER.search(item.question).group(1))
    assert omitted == item.source["tokens_omitted"] > 0 and item.source["mode"] == "cot"
    assert LONG[:60] in item.question and LONG[-60:] in item.question  # the approach and the wrong conclusion
    assert stats.budget["shortened"] == 1 and stats.budget["tokens_omitted"] == omitted
    assert stats.budget["longest_prompt"] == math.ceil(len(item.question) / 4)
    assert stats.flat()["budget/shortened"] == 1
    # without a budget nothing changes: the whole attempt, no tally
    (whole,), unbudgeted = recycle([_long_group()], COT_ONLY, seed=0)
    assert LONG in whole.question and "tokens_omitted" not in whole.source and unbudgeted.budget == {}


def test_the_answer_rule_shows_the_final_answer_instead_and_drops_attempts_without_one():
    config = dataclasses.replace(UNCAPPED, kinds=("reflection",), max_prompt_tokens=250, over_budget="answer")
    # two groups split between the modes; the "cot" one falls back to its answer
    items, stats = recycle([_long_group(), _long_group()], config, seed=0)
    assert [item.source["mode"] for item in items] == ["answer", "answer"]
    assert all(LONG not in item.question for item in items)
    assert stats.budget["cot_to_answer"] == 1 and stats.budget["shortened"] == 0 and "over-budget" not in stats.skipped
    items, stats = recycle([_long_group(answer=None)], config, seed=0)
    assert items == [] and stats.skipped["over-budget"] == 1


def test_prompts_that_cannot_fit_are_dropped_and_counted_never_cut():
    question = "A very long question. " * 200
    groups = [_group([1, 0], question=question), _group([0, 0], question=question), _long_group(question=question)]
    config = dataclasses.replace(UNCAPPED, max_prompt_tokens=300)
    full, _ = recycle(groups, UNCAPPED, seed=1)
    items, stats = recycle(groups, config, seed=1)
    assert items == [] and stats.skipped["over-budget"] == len(full) > 3
    assert sum(stats.items.values()) == 0


def test_a_marker_whose_count_is_the_gold_drops_the_item():
    config = dataclasses.replace(COT_ONLY, max_prompt_tokens=250)
    (item,), _ = recycle([_long_group()], config, seed=0)
    gold = MARKER.search(item.question).group(1)
    assert gold not in LONG
    group = Group("What is six times seven?", gold, (Rollout(LONG, 0.0, "41"),))
    items, stats = recycle([group], config, seed=0)
    assert items == [] and stats.skipped["cot-shows-gold"] == 1


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 400), min_size=1, max_size=8),
    rewards=st.lists(st.sampled_from([0.0, 1.0]), min_size=8, max_size=8),
    budget=st.sampled_from([150, 180, 260]),
    rule=st.sampled_from(["shorten", "answer"]),
    seed=st.integers(0, 1000),
)
def test_every_recycled_prompt_fits_its_budget(lengths, rewards, budget, rule, seed):
    def rollout(i, n, reward):
        answer = str(2 * i + (reward == 0))  # wrong answers are one off
        return Rollout("think " * n + f"so {answer}", reward, None if n % 3 == 0 else answer)

    groups = [Group(f"What is {i} + {i}?", str(2 * i), tuple(rollout(i, n, r) for n, r in zip(lengths, rewards)))
              for i in range(4)]
    config = dataclasses.replace(UNCAPPED, max_prompt_tokens=budget, over_budget=rule, min_attempt_tokens=8)
    items, stats = recycle(groups, config, seed)
    assert all(math.ceil(len(item.question) / 4) <= budget for item in items)
    shortened = [item for item in items if "tokens_omitted" in item.source]
    assert all(MARKER.search(item.question) for item in shortened) and len(shortened) == stats.budget["shortened"]
    assert rule == "shorten" or not shortened
    full, _ = recycle(groups, UNCAPPED, seed)
    assert len(items) + stats.skipped.get("over-budget", 0) + stats.skipped.get("cot-shows-gold", 0) >= len(full)


# --- properties over random groups ----------------------------------------------------------

GOLD = "G0LD"


@st.composite
def groups_strategy(draw):
    n_groups = draw(st.integers(0, 12))
    groups = []
    for g in range(n_groups):
        size = draw(st.integers(1, 10))
        rollouts = []
        for _ in range(size):
            reward = draw(st.sampled_from([0.0, 1.0, 1.0, 0.0, 0.5]))
            # Correct answers sometimes spell the gold differently, sometimes equal it.
            answer = draw(st.sampled_from([None, " ", "1", "2", "3", "1 ", GOLD, "g0ld", "{x}"]))
            # Some traces show the gold on the way to another answer, some only inside a word.
            text = draw(st.text(alphabet="ab {}\\", max_size=12)) + draw(st.sampled_from(["", f" {GOLD}.", f"x{GOLD}"]))
            rollouts.append(Rollout(text, reward, answer))
        question = draw(st.sampled_from(["Q {0} {candidate}?", "What is 1+1?", f"Is it {GOLD}?"]))
        groups.append(Group(f"{question} #{g}", GOLD, tuple(rollouts), images=(f"img{g}.png",)))
    return groups


configs_strategy = st.builds(
    RecyclingConfig,
    mixed_pointwise_prob=st.sampled_from([0.0, 0.3, 1.0]),
    max_judge_items=st.sampled_from([None, 0, 3, 32]),
    max_reflection_items=st.sampled_from([None, 2, 32]),
    judge_items_per_group=st.sampled_from([None, 0.5, 2.0]),
    reflection_items_per_group=st.sampled_from([None, 0.25, 0.5]),
    balance_labels=st.booleans(),
    balance_positions=st.booleans(),
    balance_kinds=st.booleans(),
    reflect_unextracted=st.booleans(),
    drop_wrong_matching_gold=st.booleans(),
    drop_cot_showing_gold=st.booleans(),
)


@settings(max_examples=150, deadline=None)
@given(groups=groups_strategy(), config=configs_strategy, seed=st.integers(0, 2**32))
def test_properties_hold_for_random_groups(groups, config, seed):
    items, stats = recycle(groups, config, seed)
    check_items(groups, items, config)
    check_balance(items, config)
    judge = sum(i.task != "reflection" for i in items)
    reflection = len(items) - judge
    for cap, count in ((config.judge_cap(len(groups)), judge), (config.reflection_cap(len(groups)), reflection)):
        assert cap is None or count <= cap
    assert config.max_judge_items is None or judge <= config.max_judge_items
    assert sum(stats.items.values()) == len(items)
    assert recycle(groups, config, seed) == (items, stats)


@settings(max_examples=60, deadline=None)
@given(groups=groups_strategy(), seed=st.integers(0, 100))
def test_judge_prompts_do_not_depend_on_the_gold_or_the_reasoning(groups, seed):
    def rewritten(group):
        rollouts = tuple(dataclasses.replace(r, text=r.text + " hidden reasoning") for r in group.rollouts)
        return dataclasses.replace(group, answer="SECRET-GOLD", rollouts=rollouts)

    config = dataclasses.replace(UNCAPPED, drop_wrong_matching_gold=False)
    judge = [i for i in recycle(groups, config, seed)[0] if i.task != "reflection"]
    again = [i for i in recycle([rewritten(g) for g in groups], config, seed)[0] if i.task != "reflection"]
    assert [i.question for i in judge] == [i.question for i in again]
    assert all("SECRET-GOLD" not in i.question and "hidden reasoning" not in i.question for i in again)


# --- real text: GSM8K model solutions ---------------------------------------------------------

@pytest.fixture(scope="module")
def gsm8k_groups(gsm8k_solutions) -> list[Group]:
    """One group per question; final answers read as the CLI and the trainer read them
    (`extract_final_answer` with its default fallbacks, `A:` among them)."""
    groups = []
    with gsm8k_solutions.open(encoding="utf-8") as handle:
        for row, line in enumerate(handle, start=1):
            record = json.loads(line)
            solutions = [v for k, v in record.items() if isinstance(v, dict) and "solution" in v]
            rollouts = tuple(Rollout(s["solution"], float(s["is_correct"]), extract_final_answer(s["solution"]))
                             for s in solutions)
            groups.append(Group(record["question"], extract_final_answer(record["ground_truth"]), rollouts,
                                source={"row": row}))
    return groups


@pytest.mark.parametrize("config", [RecyclingConfig(), UNCAPPED, AUTHORS,
                                    dataclasses.replace(UNCAPPED, balance_kinds=True)])
def test_real_gsm8k_solutions_recycle_into_valid_items(gsm8k_groups, config):
    groups = gsm8k_groups
    assert len(groups) > 1000 and all(len(g.rollouts) == 4 for g in groups)
    assert sum(r.answer is None for g in groups for r in g.rollouts) == 11  # cut off before their `A:` line
    items, stats = recycle(groups, config, seed=0)
    check_items(groups, items, config)
    check_balance(items, config)
    assert {i.task for i in items} == {"pointwise", "pairwise", "reflection"}
    assert all(isinstance(i, Example) for i in items)
    assert set(stats.outcomes) == {"all_correct", "all_wrong", "mixed"}
    # About one wrong GSM8K solution in eight passes through the right number on its way.
    assert 300 < stats.skipped["cot-shows-gold"] < 600
