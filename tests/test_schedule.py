from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparkrl.schedule import RoundPlan, RoundState, fill_round, mix_slots, plan_round, round_budget


def test_alternate_waits_for_a_full_round_then_alternates():
    assert plan_round("alternate", slots=4, waiting=3, previous_was_recycled=False) == RoundPlan(0, 4)
    assert plan_round("alternate", slots=4, waiting=4, previous_was_recycled=False) == RoundPlan(4, 0)
    # never two recycled rounds in a row, however full the pool
    assert plan_round("alternate", slots=4, waiting=100, previous_was_recycled=True) == RoundPlan(0, 4)


def test_mix_takes_its_share_or_what_waits():
    assert plan_round("mix", slots=8, waiting=100, previous_was_recycled=False, mix_share=0.25) == RoundPlan(2, 6)
    assert plan_round("mix", slots=8, waiting=1, previous_was_recycled=True, mix_share=0.5) == RoundPlan(1, 7)
    assert plan_round("mix", slots=8, waiting=0, previous_was_recycled=False) == RoundPlan(0, 8)


def test_off_never_recycles():
    assert plan_round("off", slots=2, waiting=50, previous_was_recycled=False) == RoundPlan(0, 2)


def test_mix_always_leaves_a_dataset_slot():
    assert mix_slots(2, 0.99) == 1
    assert mix_slots(10, 0.01) == 1
    with pytest.raises(ValueError):
        mix_slots(4, 1.0)


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="slot"):
        plan_round("alternate", slots=0, waiting=0, previous_was_recycled=False)
    with pytest.raises(ValueError, match="schedule"):
        plan_round("sometimes", slots=2, waiting=2, previous_was_recycled=False)


@settings(max_examples=200, deadline=None)
@given(
    schedule=st.sampled_from(["alternate", "mix", "off"]),
    slots=st.integers(1, 9),
    produced=st.lists(st.integers(0, 20), min_size=1, max_size=30),
    share=st.floats(0.05, 0.95),
)
def test_dataset_prompts_are_consumed_in_order_never_lost_or_repeated(schedule, slots, produced, share):
    state = RoundState()
    next_prompt = 0
    trained = []
    for round_index, n_new in enumerate(produced):
        incoming = [{"id": next_prompt + i} for i in range(slots)]
        next_prompt += slots
        plan = plan_round(schedule, slots, len(state.pool), state.previous_was_recycled, share)
        recycled, dataset = fill_round(state, plan, incoming)
        assert len(recycled) + len(dataset) == slots
        trained.extend(row["id"] for row in dataset)
        state.add_items(({"item": (round_index, k)} for k in range(n_new)), capacity=None)
    # every dataset prompt trained once, in loader order; the rest still waits, in order
    waiting = [row["id"] for row in state.deferred]
    assert trained + waiting == list(range(next_prompt))
    assert state.items_trained + len(state.pool) == state.items_built
    # the deferred queue holds one prompt per recycled slot so far: it grows with the run, no faster
    assert len(state.deferred) == state.items_trained
    assert state.rounds == len(produced) == state.policy_rounds + state.recycled_rounds


def test_capacity_drops_oldest_and_counts():
    state = RoundState()
    state.add_items(({"i": i} for i in range(5)), capacity=3)
    assert [item["i"] for item in state.pool] == [2, 3, 4]
    assert state.items_dropped == 2


def test_state_round_trips_through_dict():
    state = RoundState(pool=deque([{"a": 1}]), deferred=deque([{"b": 2}]), rounds=3, policy_rounds=2)
    state.recycled_rounds, state.previous_was_recycled, state.items_built = 1, True, 7
    state.label_balance = {"yes_no": -1}
    again = RoundState.from_dict(state.to_dict())
    assert again.to_dict() == state.to_dict() and again.label_balance == {"yes_no": -1}
    # A checkpoint from before the balance was carried starts even.
    old = {k: v for k, v in state.to_dict().items() if k != "label_balance"}
    assert RoundState.from_dict(old).label_balance == {}


def test_round_budget_leaves_room_for_a_recycled_round_after_each_policy_round_only_in_alternate():
    assert [round_budget(schedule, 40) for schedule in ("alternate", "mix", "off")] == [80, 40, 40]


def test_unlabeled_prompts_take_their_share_of_dataset_slots_and_defer_the_labelled_ones():
    from sparkrl.schedule import unlabeled_indices, unlabeled_slots

    assert [unlabeled_slots(slots, 0.5) for slots in (0, 1, 2, 3, 8)] == [0, 1, 1, 2, 4]  # half rounds up
    assert unlabeled_slots(4, 0.0) == 0 and unlabeled_slots(4, 1.0) == 4
    # each pass over the file is a fresh seeded order: every row once per pass, identical on every call
    first = unlabeled_indices(0, 10, 5, seed=7)
    assert sorted(first[:5]) == sorted(first[5:]) == list(range(5)) and first[:5] != first[5:]
    assert unlabeled_indices(3, 4, 5, seed=7) == first[3:7]  # resuming from a count continues the same stream
    state = RoundState()
    recycled, dataset = fill_round(state, RoundPlan(recycled=0, dataset=4), [{"id": i} for i in range(4)], unlabeled=3)
    assert recycled == [] and dataset == [{"id": 0}] and [row["id"] for row in state.deferred] == [1, 2, 3]
    assert state.unlabeled_taken == 3 and state.policy_rounds == 1
    assert RoundState.from_dict(state.to_dict()).unlabeled_taken == 3
    with pytest.raises(ValueError, match="do not fit"):
        fill_round(state, RoundPlan(recycled=0, dataset=2), [{"id": 9}] * 2, unlabeled=3)
