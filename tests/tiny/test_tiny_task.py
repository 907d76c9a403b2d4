"""Tests for sparkrl.tiny.task: generation, splits, solutions and judge rows."""

from __future__ import annotations

import random

import pytest

from sparkrl.tiny.task import (
    Problem,
    TaskConfig,
    boxed_answer,
    columns,
    correct_solution,
    generate_examples,
    generate_problems,
    judge_examples,
    split_capacity,
    split_of,
    teacher_solution,
    wrong_answer,
    wrong_solution,
)
from sparkrl.tiny.templates import TINY_TEMPLATES


def _evaluate_steps(solution: str) -> list[tuple[list[int], int]]:
    """Parse 'a+b+c=t' steps of a solution into (terms, stated total)."""
    steps = []
    for step in solution.split(" \\boxed{")[0].split(" "):
        left, total = step.split("=")
        steps.append(([int(t) for t in left.split("+")], int(total)))
    return steps


def test_generation_is_deterministic_and_distinct() -> None:
    config = TaskConfig()
    first = generate_problems(config, "train", 300, seed=7)
    assert first == generate_problems(config, "train", 300, seed=7)
    assert first != generate_problems(config, "train", 300, seed=8)
    assert len({p.operands for p in first}) == 300


@pytest.mark.parametrize("operands,digits", [(2, 2), (2, 3), (3, 2)])
def test_train_and_test_never_share_a_problem_whatever_the_seeds(operands: int, digits: int) -> None:
    config = TaskConfig(operands=operands, digits=digits)
    test = generate_problems(config, "test", 200, seed=0)
    train = [p for seed in range(3) for p in generate_problems(config, "train", 1000, seed)]
    test_sets = {tuple(sorted(p.operands)) for p in test}
    assert not test_sets & {tuple(sorted(p.operands)) for p in train}
    assert all(split_of(p.operands, config.test_fraction) == "test" for p in test)


def test_reordered_operands_stay_in_the_same_split() -> None:
    assert split_of((123, 456), 0.5) == split_of((456, 123), 0.5)


def test_numbers_have_exactly_the_requested_digits() -> None:
    for problem in generate_problems(TaskConfig(operands=3, digits=2), "train", 200, seed=1):
        assert len(problem.operands) == 3
        assert all(10 <= n <= 99 for n in problem.operands)


@pytest.mark.parametrize("operands,digits", [(3, 1), (2, 3), (3, 2), (4, 4)])
def test_correct_solution_steps_are_true_and_box_the_sum(operands: int, digits: int) -> None:
    for problem in generate_problems(TaskConfig(operands=operands, digits=digits), "train", 30, seed=3):
        solution = correct_solution(problem)
        assert boxed_answer(solution) == str(sum(problem.operands))
        carry = 0
        for column, (terms, total) in enumerate(_evaluate_steps(solution)):
            expected_digits = [n // 10**column % 10 for n in problem.operands]
            assert terms[: len(expected_digits)] == expected_digits
            assert terms[len(expected_digits) :] == ([carry] if carry else [])
            assert sum(terms) == total
            carry = total // 10


def test_known_solution_text() -> None:
    assert correct_solution(Problem((347, 285))) == "7+5=12 4+8+1=13 3+2+1=6 \\boxed{632}"
    assert correct_solution(Problem((99, 1))) == "9+1=10 9+0+1=10 \\boxed{100}"


def test_wrong_solutions_are_wrong_and_consistent() -> None:
    rng = random.Random(0)
    for problem in generate_problems(TaskConfig(digits=3), "train", 300, seed=4):
        solution = wrong_solution(problem, rng)
        assert boxed_answer(solution) != problem.answer
        assert int(boxed_answer(solution)) >= 0
        assert wrong_answer(problem, rng) != problem.answer


def test_teacher_slips_only_on_carries_at_the_configured_rate() -> None:
    rng = random.Random(0)
    no_carry = Problem((123, 456))
    assert all(teacher_solution(no_carry, rng, 1.0) == correct_solution(no_carry) for _ in range(20))
    one_carry = Problem((105, 107))
    right = sum(teacher_solution(one_carry, rng, 0.3) == correct_solution(one_carry) for _ in range(2000))
    assert 0.65 < right / 2000 < 0.75
    assert boxed_answer(teacher_solution(one_carry, rng, 1.0)) == "202"


def test_false_carries_go_only_into_columns_that_receive_none() -> None:
    rng = random.Random(0)
    no_carry = Problem((123, 456))
    # Every column after the first receives a carry of 1 that is not due: 9, 2+5+1, 1+4+1.
    assert teacher_solution(no_carry, rng, 0.0, 1.0) == "3+6=9 2+5+1=8 1+4+1=6 \\boxed{689}"
    right = sum(teacher_solution(no_carry, rng, 0.0, 0.3) == correct_solution(no_carry) for _ in range(2000))
    assert 0.44 < right / 2000 < 0.54  # two free columns, each left alone with probability 0.7
    # Where every column receives a true carry there is nowhere to put a false one.
    all_carry = Problem((199, 101))
    assert all(teacher_solution(all_carry, rng, 0.0, 1.0) == correct_solution(all_carry) for _ in range(20))
    # Without false carries the teacher draws exactly what it drew before the option existed.
    one_carry = Problem((105, 107))
    first, second = random.Random(3), random.Random(3)
    assert [teacher_solution(one_carry, first, 0.5) for _ in range(50)] == [
        teacher_solution(one_carry, second, 0.5, 0.0) for _ in range(50)]


def test_columns_dropping_a_carry_changes_the_total_by_it() -> None:
    cols = columns(Problem((58, 67)), dropped=frozenset([1]))
    assert [c.text() for c in cols] == ["8+7=15", "5+6=11"]


def test_examples_are_bare_questions_with_integer_answers() -> None:
    rows = generate_examples(TaskConfig(), "test", 5, seed=0)
    for row in rows:
        assert row.task == "policy"
        assert row.question.replace("+", "").isdigit()
        assert row.answer == str(sum(row.source["operands"]))


@pytest.mark.parametrize("kind,labels", [("pointwise", {"Yes", "No"}), ("pairwise", {"A", "B"})])
def test_judge_examples_are_balanced_and_labelled_right(kind: str, labels: set[str]) -> None:
    rows = judge_examples(TaskConfig(), "test", 40, seed=0, kind=kind, templates=TINY_TEMPLATES)
    assert {r.answer for r in rows} == labels
    assert sum(r.answer == sorted(labels)[0] for r in rows) == 20
    for row in rows:
        truth = row.source["truth"]
        if kind == "pairwise":
            shown_a = row.question.split("A: ")[1].split("\n")[0]
            assert (shown_a == truth) == (row.answer == "A")
        else:
            shown = row.question.split("Answer: ")[1].split("\n")[0]
            assert (shown == truth) == (row.answer == "Yes")


def test_judge_examples_reject_unknown_kind() -> None:
    with pytest.raises(ValueError, match="kind"):
        judge_examples(TaskConfig(), "test", 2, 0, "reflection", TINY_TEMPLATES)


@pytest.mark.parametrize(
    "kwargs,match",
    [({"operands": 1}, "operands"), ({"digits": 0}, "digits"), ({"carry_slip": 1.5}, "carry_slip"),
     ({"test_fraction": 0.0}, "test_fraction"), ({"asked": "units"}, "asked"), ({"asked": "tens", "digits": 1}, "digits"),
     ({"carry_slip": None}, "carry_slip"), ({"judge_slip": "0.5"}, "judge_slip"), ({"judge_slip": -0.1}, "judge_slip"),
     ({"carry_slip": True}, "carry_slip"), ({"judge_slip": False}, "judge_slip"), ({"false_carry": 1.5}, "false_carry"),
     ({"false_carry": None}, "false_carry"), ({"false_carry": True}, "false_carry")],
)
def test_config_rejects_bad_values(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TaskConfig(**kwargs)


def test_requests_beyond_the_space_fail_clearly() -> None:
    config = TaskConfig(digits=1)
    assert split_capacity(config, "test") < 10
    with pytest.raises(ValueError, match="digits"):
        generate_problems(config, "test", 50, seed=0)
    with pytest.raises(ValueError, match="split"):
        generate_problems(config, "valid", 1, seed=0)


def test_problem_rejects_negative_and_single_operands() -> None:
    with pytest.raises(ValueError):
        Problem((5,))
    with pytest.raises(ValueError):
        Problem((5, -1))


def test_tens_digit_and_explicit_carries_text() -> None:
    problem = Problem((347, 285), asked="tens", explicit_carries=True)
    assert problem.question == "tens of 347+285"
    assert problem.answer == "3"
    assert correct_solution(problem) == "7+5=12 4+8+1=13 3+2+1=6 \\boxed{3}"
    assert correct_solution(Problem((97, 41), explicit_carries=True)) == "7+1=8 9+4+0=13 \\boxed{138}"
    with pytest.raises(ValueError, match="asked"):
        Problem((1, 2), asked="units")


def test_explicit_carries_give_solutions_of_one_length() -> None:
    config = TaskConfig(asked="tens", explicit_carries=True)
    rng = random.Random(0)
    problems = generate_problems(config, "train", 300, seed=1)
    lengths = {len(s) for p in problems for s in (correct_solution(p), teacher_solution(p, rng, 0.5), wrong_solution(p, rng))}
    # Column totals have one or two digits; everything else is fixed.
    assert max(lengths) - min(lengths) <= 2
    assert all(p.asked == "tens" and p.explicit_carries for p in problems)


def test_wrong_tens_answers_always_differ_and_stay_one_digit() -> None:
    rng = random.Random(0)
    for problem in generate_problems(TaskConfig(asked="tens"), "train", 500, seed=2):
        wrong = wrong_answer(problem, rng)
        assert wrong != problem.answer and len(wrong) == 1 and problem.answer == str(sum(problem.operands) // 10 % 10)


def test_tens_parity_is_one_bit_that_every_wrong_answer_flips() -> None:
    problem = Problem((347, 285), asked="tens-parity", explicit_carries=True)
    assert problem.question == "parity of tens of 347+285"
    assert problem.answer == "1"  # 632: tens digit 3, odd
    assert correct_solution(problem).endswith("3+2+1=6 \\boxed{1}")
    rng = random.Random(0)
    for problem in generate_problems(TaskConfig(asked="tens-parity"), "train", 500, seed=2):
        assert problem.answer == str(sum(problem.operands) // 10 % 2)
        assert {wrong_answer(problem, rng), problem.answer} == {"0", "1"}
    with pytest.raises(ValueError, match="digits"):
        TaskConfig(asked="tens-parity", digits=1)
