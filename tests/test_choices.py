"""Structured golds: how options and letters are read and written (`sparkrl.choices`), and how
`sparkrl.verification` grades multiple-choice letters, option texts and numbers with a
precision, for evaluation and training alike."""

from __future__ import annotations

import pytest

from sparkrl import choices
from sparkrl.choices import ChoiceAnswer, NumberAnswer
from sparkrl.rewards import RewardRouter
from sparkrl.verification import extract_final_answer, verify_many, verify_math

# --------------------------------------------------------------------------- reading letters


@pytest.mark.parametrize(
    ("answer", "letters"),
    [
        ("B", "B"), ("(B)", "B"), ("b", "B"), (r"\text{B}", "B"), ("$B$", "B"), ("**B**.", "B"),
        ("B. 12 cm", "B"), ("(B) 12 cm", "B"), ("B) 12", "B"), ("B: 12", "B"), ("Option B", "B"),
        ("The answer is B", "B"), ("A, C", "AC"), ("C, A", "AC"), ("C A", "AC"), ("CA", "AC"),
        ("A and C", "AC"), ("(A) and (C)", "AC"), ("A;C", "AC"), ("A/C", "AC"),
        ("12", None), ("12 cm", None), ("A or B", None), ("", None), ("x + 1", None),
    ],
)
def test_read_letters(answer, letters):
    expected = None if letters is None else frozenset(letters)
    assert choices.read_letters(answer) == expected


def test_letters_beyond_the_options_are_not_letter_answers():
    assert choices.read_letters("E", 4) is None
    assert choices.read_letters("D", 4) == frozenset("D")
    assert choices.read_letters("A, E", 4) is None


# --------------------------------------------------------------------------- options


def test_options_in_question_text():
    assert choices.options_in_text("Find C.\nChoices:\nA:40°\nB:50°\nC:60°") == ("40°", "50°", "60°")
    assert choices.options_in_text("How many?\n(A) 10\n(B) 12") == ("10", "12")
    assert choices.options_in_text("How many? A) 10 B) 12 C) 14 D) 16") == ("10", "12", "14", "16")
    assert choices.options_in_text("Which one? choice: (A) f (B) g") == ("f", "g")
    assert choices.options_in_text("Which choice (A, B, C, or D) fits?") == ()
    assert choices.options_in_text("A. only one option") == ()


def test_split_options_reads_the_we_math_option_string():
    assert choices.split_options("A. 40°; B. 50°; C. No correct answer") == ("40°", "50°", "No correct answer")
    assert choices.split_options("see the figure") == ()
    assert choices.split_options("A. 1; C. 2") == ()  # letters out of order


def test_option_lines():
    assert choices.option_lines(("3 cm", "4 cm")) == "Choices:\nA. 3 cm\nB. 4 cm"
    assert choices.option_lines(("A", "B", "C")) == "Choices: A, B, C"


# --------------------------------------------------------------------------- encoding


def test_encoded_golds_round_trip_and_show_their_plain_answer():
    for answer, plain in [
        (ChoiceAnswer(frozenset("AC"), ("3", "4", "5")), "A, C"),
        (ChoiceAnswer(frozenset("B")), "B"),
        (NumberAnswer("1.45", precision=2, unit="cm"), "1.45"),
        (NumberAnswer("0.333", tolerance=0.001), "0.333"),
    ]:
        gold = choices.encode(answer)
        assert choices.decode(gold) == answer
        assert extract_final_answer(gold) == plain  # what recycling and judge prompts read
    assert choices.decode("18") is None
    with pytest.raises(ValueError, match="malformed"):
        choices.decode(choices.PREFIX + "{not json")


def test_structured_answers_are_validated():
    with pytest.raises(ValueError, match="letters"):
        ChoiceAnswer(frozenset("D"), ("1", "2"))
    with pytest.raises(ValueError, match="letters"):
        ChoiceAnswer(frozenset())
    with pytest.raises(ValueError, match="not both"):
        NumberAnswer("1", precision=1, tolerance=0.1)
    with pytest.raises(ValueError, match="precision"):
        NumberAnswer("1", precision=-1)


# --------------------------------------------------------------------------- grading

SINGLE = choices.encode(ChoiceAnswer(frozenset("B"), ("3 cm", "4 cm", "5 cm")))
MULTI = choices.encode(ChoiceAnswer(frozenset("AC")))
PRECISE = choices.encode(NumberAnswer("1.45", precision=2, unit="cm^2"))
WITHIN = choices.encode(NumberAnswer("0.333", tolerance=0.001))
INTEGER = choices.encode(NumberAnswer("7"))

GRADED = [
    # multiple choice by letter, in every common spelling
    (r"\boxed{B}", SINGLE, True), (r"\boxed{(B)}", SINGLE, True), (r"\boxed{B. 4 cm}", SINGLE, True),
    (r"\boxed{\text{B}}", SINGLE, True), ("So the answer is B.", SINGLE, True),
    (r"\boxed{A}", SINGLE, False), (r"\boxed{D}", SINGLE, False), (r"\boxed{A, B}", SINGLE, False),
    # by the option's text
    (r"\boxed{4 cm}", SINGLE, True), (r"\boxed{4}", SINGLE, True), (r"\boxed{3 cm}", SINGLE, False),
    # several letters, any order and separator
    (r"\boxed{A, C}", MULTI, True), (r"\boxed{C, A}", MULTI, True), (r"\boxed{CA}", MULTI, True),
    (r"\boxed{A and C}", MULTI, True), (r"\boxed{A}", MULTI, False), (r"\boxed{A, B, C}", MULTI, False),
    # precision: both sides rounded to 2 decimals; units stripped
    (r"\boxed{1.45}", PRECISE, True), (r"\boxed{1.449}", PRECISE, True), (r"\boxed{1.45 cm^2}", PRECISE, True),
    (r"\boxed{1.4}", PRECISE, False), (r"\boxed{1.46}", PRECISE, False), (r"\boxed{about one}", PRECISE, False),
    # tolerance (DynaMath floats)
    (r"\boxed{0.3333}", WITHIN, True), (r"\boxed{1/3}", WITHIN, True), (r"\boxed{0.335}", WITHIN, False),
    # integers with units
    (r"\boxed{7 bars}", INTEGER, True), (r"\boxed{7.0}", INTEGER, True), (r"\boxed{8}", INTEGER, False),
]


@pytest.mark.parametrize(("response", "gold", "right"), GRADED)
def test_structured_grading(response, gold, right):
    verdict = verify_math(response, gold)
    assert verdict.correct is right
    if right:
        assert verdict.reason in {"choice-match", "number-match"}


def test_batched_grading_equals_one_by_one_and_mixes_with_plain_golds():
    responses = [r for r, _, _ in GRADED] + [r"\boxed{18}", r"\boxed{19}"]
    golds = [g for _, g, _ in GRADED] + ["18", "18"]
    assert [v.correct for v in verify_many(responses, golds)] == [ok for _, _, ok in GRADED] + [True, False]


def test_no_answer_and_overlong_answers():
    assert verify_math("I think it is B", SINGLE).reason == "no-answer"
    assert verify_math("\\boxed{" + "B" * 2000 + "}", SINGLE).reason == "answer-too-long"


def test_training_rewards_use_the_same_rule():
    router = RewardRouter()
    scores = router(["q"] * 3, [r"\boxed{4 cm}", r"\boxed{C, A}", r"\boxed{1.4}"], answer=[SINGLE, MULTI, PRECISE])
    assert scores == [1.0, 1.0, 0.0]
