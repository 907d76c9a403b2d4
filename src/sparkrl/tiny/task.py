"""The embedded synthetic task: column addition with a written, checkable solution.

A problem is a sum of `operands` numbers of exactly `digits` digits each, e.g. `347+285`
(the default is two 2-digit numbers: the micro model learns that in about a minute).
Its solution adds the columns from the right, writing each column with the carry it
receives, then boxes the total:

    7+5=12 4+8+1=13 3+2+1=6 \\boxed{632}

Texts are kept this short on purpose: the tiny model pays for every token, and the demo
must run on a laptop CPU.

The warm-start teacher is deliberately imperfect: it forgets each carry with probability
`carry_slip`, and then carries on consistently from its wrong column. A model imitating it
solves carry-free problems and is unsure on the rest, so sampled groups are mixed (which
is what pairwise judge items need) and RL has a clear mistake to remove.

Two options change how answers are written, for studying what a tiny judge can learn
(`bench/probe_judge_learning.py`): `asked="tens"` asks for the tens digit of the sum, a
one-token answer (`asked="tens-parity"`: its parity, a one-bit answer that every wrong
solution flips), and `explicit_carries` writes every carry after the first column, 0
included (`7+1=8 9+4+0=13`), so that every solution of a task has the same length and the
tiny model finds each part of a judge prompt at a fixed distance.

Train and test splits partition the problem space by a hash of the operand multiset, so
no test problem (nor a reordering of one) can ever be generated for training, whatever the
seeds.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from sparkrl.checks import is_probability
from sparkrl.rows import TASK_PAIRWISE, TASK_POINTWISE, Example
from sparkrl.templates import TemplateSet, pairwise_prompt, pointwise_prompt

SPLITS = ("train", "test")
ASKED = ("sum", "tens", "tens-parity", "top")
# How a question names the top place of `digits`-digit numbers (`asked="top"`).
PLACES = {2: "tens", 3: "hundreds", 4: "thousands", 5: "ten-thousands", 6: "hundred-thousands"}


@dataclass(frozen=True)
class TaskConfig:
    """Difficulty of the task family and the imperfection of the warm-start teacher.

    operands: how many numbers are added (2-4).
    digits: digits per number (1-6); numbers never start with 0.
    carry_slip: probability that the teacher forgets a carry it should write.
    test_fraction: share of the problem space reserved for the test split.
    asked: the answer asked for: the whole sum, its tens digit (a one-token answer), the
        parity of that digit (a one-bit answer), or its digit at the numbers' top place
        ("top": the hundreds digit of a sum of 3-digit numbers, one of ten values that depends
        on every carry below it).
    explicit_carries: write the carry of every column after the first, 0 included.
    direct_answers: policy and reflection replies state only the asked answer (`\\boxed{6}`),
        without the written columns; judge replies still work the question (`sparkrl.tiny.warmstart`).
    judge_slip: the teacher's carry slip when it works a judge's solution (None: `carry_slip`).
    false_carry: probability that the policy and reflection teacher writes a carry of 1 into a
        column that receives none (the judge's teacher never does).
    """

    operands: int = 2
    digits: int = 2
    carry_slip: float = 0.5
    test_fraction: float = 0.1
    asked: str = "sum"
    explicit_carries: bool = False
    direct_answers: bool = False
    judge_slip: float | None = None
    false_carry: float = 0.0

    def __post_init__(self) -> None:
        if not is_probability(self.false_carry):
            raise ValueError(f"TaskConfig.false_carry must be in [0, 1], got {self.false_carry!r}")
        if self.judge_slip is not None and not is_probability(self.judge_slip):
            raise ValueError(f"TaskConfig.judge_slip must be in [0, 1] or None, got {self.judge_slip!r}")
        if not 2 <= self.operands <= 4:
            raise ValueError(f"TaskConfig.operands must be 2-4, got {self.operands}")
        if not 1 <= self.digits <= 6:
            raise ValueError(f"TaskConfig.digits must be 1-6, got {self.digits}")
        if not is_probability(self.carry_slip):
            raise ValueError(f"TaskConfig.carry_slip must be in [0, 1], got {self.carry_slip!r}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"TaskConfig.test_fraction must be in (0, 1), got {self.test_fraction}")
        if self.asked not in ASKED:
            raise ValueError(f"TaskConfig.asked must be one of {ASKED}, got {self.asked!r}")
        if self.asked != "sum" and self.digits < 2:
            # With one column there is no tens column whose miscount makes a wrong answer.
            raise ValueError(f"TaskConfig.asked={self.asked!r} needs digits >= 2, got {self.digits}")


@dataclass(frozen=True)
class Problem:
    """One sum, what is asked of it and how its solution is written (see `TaskConfig`);
    `operands` are positive integers of equal length."""

    operands: tuple[int, ...]
    asked: str = "sum"
    explicit_carries: bool = False

    def __post_init__(self) -> None:
        if len(self.operands) < 2:
            raise ValueError(f"Problem needs at least 2 operands, got {self.operands}")
        if any(n < 0 for n in self.operands):
            raise ValueError(f"Problem operands must be non-negative, got {self.operands}")
        if self.asked not in ASKED:
            raise ValueError(f"Problem.asked must be one of {ASKED}, got {self.asked!r}")

    @property
    def digits(self) -> int:
        return max(len(str(n)) for n in self.operands)

    @property
    def question(self) -> str:
        expression = "+".join(str(n) for n in self.operands)
        if self.asked == "tens-parity":
            return f"parity of tens of {expression}"
        if self.asked == "top":
            return f"{PLACES.get(self.digits, 'top')} of {expression}"
        return expression if self.asked == "sum" else f"tens of {expression}"

    @property
    def answer(self) -> str:
        return stated_answer(sum(self.operands), self.asked, self.digits)

    def to_example(self, split: str) -> Example:
        return Example(
            question=self.question,
            answer=self.answer,
            source={"task": "tiny-addition", "split": split, "operands": list(self.operands)},
        )


@dataclass(frozen=True)
class Column:
    """One written column: its digits, the carry written into it, and the sum it states."""

    digits: tuple[int, ...]
    carry: int
    total: int

    def text(self, explicit_carry: bool = False) -> str:
        terms = [*self.digits, self.carry] if self.carry or explicit_carry else list(self.digits)
        return "+".join(str(t) for t in terms) + f"={self.total}"


def stated_answer(total: int, asked: str, digits: int = 2) -> str:
    """The answer a solution states for a (possibly wrong) total of `digits`-digit numbers."""
    if asked == "tens-parity":
        return str(total // 10 % 2)
    if asked == "top":
        return str(total // 10 ** (digits - 1) % 10)
    return str(total) if asked == "sum" else str(total // 10 % 10)


def split_of(operands: tuple[int, ...], test_fraction: float) -> str:
    """The split a problem belongs to, fixed by a hash of its operand multiset."""
    key = "+".join(str(n) for n in sorted(operands)).encode()
    bucket = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64
    return "test" if bucket < test_fraction else "train"


def split_capacity(config: TaskConfig, split: str) -> int:
    """How many distinct problems of `split` may be requested: half the split's expected size,
    so that rejection sampling stays fast."""
    space = (9 * 10 ** (config.digits - 1)) ** config.operands
    share = config.test_fraction if split == "test" else 1.0 - config.test_fraction
    return int(space * share / 2)


def generate_problems(config: TaskConfig, split: str, n: int, seed: int) -> list[Problem]:
    """`n` distinct problems of `split`, reproducible from `seed`."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if n > split_capacity(config, split):
        raise ValueError(
            f"{n} {split} problems requested but at most {split_capacity(config, split)} can be drawn "
            f"from {config.operands} operands of {config.digits} digits; raise digits or operands"
        )
    rng = random.Random(f"tiny-task/{split}/{seed}")
    low, high = 10 ** (config.digits - 1), 10**config.digits - 1
    seen: set[tuple[int, ...]] = set()
    problems = []
    while len(problems) < n:
        operands = tuple(rng.randint(low, high) for _ in range(config.operands))
        if operands in seen or split_of(operands, config.test_fraction) != split:
            continue
        seen.add(operands)
        problems.append(Problem(operands, config.asked, config.explicit_carries))
    return problems


def generate_examples(config: TaskConfig, split: str, n: int, seed: int) -> list[Example]:
    """Policy `Example`s (question = the bare sum, answer = its value)."""
    return [p.to_example(split) for p in generate_problems(config, split, n, seed)]


def columns(problem: Problem, dropped: frozenset[int] = frozenset(), bumped: dict[int, int] | None = None,
            added: frozenset[int] = frozenset()) -> list[Column]:
    """The written columns, right to left.

    dropped: column indices whose incoming carry is forgotten (the teacher's slip).
    bumped: column index -> error added to that column's stated sum (a plain miscount).
    added: column indices that receive a carry of 1 where none is due (a spurious carry).
    Later columns use the carry of what was written, so a wrong solution stays consistent.
    """
    width = max(len(str(n)) for n in problem.operands)
    bumped = bumped or {}
    result, carry = [], 0
    for index in range(width):
        digits = tuple(n // 10**index % 10 for n in problem.operands)
        written_carry = 0 if index in dropped else carry
        if index in added and carry == 0:
            written_carry = 1
        total = sum(digits) + written_carry + bumped.get(index, 0)
        result.append(Column(digits, written_carry, total))
        carry = total // 10
    return result


def answer_of(cols: list[Column]) -> str:
    """The total the written columns state: the last column whole, then the units digits of the others."""
    return str(cols[-1].total) + "".join(str(c.total % 10) for c in reversed(cols[:-1]))


def render(cols: list[Column], problem: Problem) -> str:
    steps = " ".join(c.text(explicit_carry=problem.explicit_carries and i > 0) for i, c in enumerate(cols))
    return steps + " " + boxed(stated_answer(int(answer_of(cols)), problem.asked, problem.digits))


def boxed(answer: str) -> str:
    return "\\boxed{" + answer + "}"


def direct_reply(solution: str) -> str:
    """A solution cut to its stated answer (`\\boxed{6}`): how `direct_answers` replies are written."""
    return boxed(boxed_answer(solution))


def correct_solution(problem: Problem) -> str:
    return render(columns(problem), problem)


def teacher_solution(problem: Problem, rng: random.Random, carry_slip: float, false_carry: float = 0.0) -> str:
    """The warm-start teacher: correct except that each carry is forgotten with `carry_slip`
    and, with `false_carry`, a carry is written into a column that receives none (drawn only
    when `false_carry` > 0, so that without it the teacher's random stream is unchanged)."""
    honest = columns(problem)
    carries_at = [i for i in range(1, len(honest)) if honest[i - 1].total >= 10]
    dropped = frozenset(i for i in carries_at if rng.random() < carry_slip)
    added: frozenset[int] = frozenset()
    if false_carry > 0:
        free = [i for i in range(1, len(honest)) if honest[i - 1].total < 10]
        added = frozenset(i for i in free if rng.random() < false_carry)
    return render(columns(problem, dropped, added=added), problem)


def wrong_solution(problem: Problem, rng: random.Random) -> str:
    """A consistent solution with a wrong answer: a forgotten carry or a column miscounted by one.

    When only one digit is asked, a miscount in another column may leave it right; the
    column of that digit is miscounted then, which always changes it.
    """
    honest = columns(problem)
    carries_at = [i for i in range(1, len(honest)) if honest[i - 1].total >= 10]
    if carries_at and rng.random() < 0.5:
        wrong = render(columns(problem, dropped=frozenset([rng.choice(carries_at)])), problem)
        # Only a carry below the asked column may leave its digit right (`asked="top"`, 3+ digits).
        error = 1
    else:
        index = rng.randrange(len(honest))
        error = 1 if honest[index].total == 0 or rng.random() < 0.5 else -1
        wrong = render(columns(problem, bumped={index: error}), problem)
    if boxed_answer(wrong) == problem.answer and len(honest) > 1:
        asked_column = len(honest) - 1 if problem.asked == "top" else 1
        wrong = render(
            columns(problem, bumped={asked_column: 1 if honest[asked_column].total == 0 else error}), problem)
    return wrong


def boxed_answer(solution: str) -> str:
    """The number in the solution's last `\\boxed{}` (solutions rendered here always have one)."""
    start = solution.rindex("\\boxed{") + len("\\boxed{")
    return solution[start : solution.index("}", start)]


def wrong_answer(problem: Problem, rng: random.Random) -> str:
    """A plausible wrong total, of the kind the tiny model itself produces."""
    return boxed_answer(wrong_solution(problem, rng))


def judge_examples(config: TaskConfig, split: str, n: int, seed: int, kind: str, templates: TemplateSet) -> list[Example]:
    """Held-out judge rows with exactly balanced labels (`Yes`/`No` or correct letter `A`/`B`).

    Wrong candidates are the plausible mistakes of `wrong_answer`; the prompt is the first
    template of the pool (`rng=None`), as at test time.
    """
    if kind not in (TASK_POINTWISE, TASK_PAIRWISE):
        raise ValueError(f"kind must be {TASK_POINTWISE!r} or {TASK_PAIRWISE!r}, got {kind!r}")
    rng = random.Random(f"tiny-judge/{kind}/{split}/{seed}")
    rows = []
    for index, problem in enumerate(generate_problems(config, split, n, seed)):
        wrong = wrong_answer(problem, rng)
        first = index % 2 == 0
        if kind == TASK_POINTWISE:
            candidate, label = (problem.answer, "Yes") if first else (wrong, "No")
            question = pointwise_prompt(problem.question, candidate, templates=templates)
        else:
            (a, b), label = ((problem.answer, wrong), "A") if first else ((wrong, problem.answer), "B")
            question = pairwise_prompt(problem.question, a, b, templates=templates)
        source = {"task": "tiny-addition", "split": split, "operands": list(problem.operands), "truth": problem.answer}
        rows.append(Example(question=question, answer=label, task=kind, source=source))
    return rows
