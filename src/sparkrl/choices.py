"""Structured ground truths: multiple-choice options and numbers with a published precision.

A row's ground truth is one string (`Example.answer`), which is all that the evaluation and
the training reward see. Benchmarks whose grading needs more than the answer (the options of
a multiple-choice question, the decimals a number is rounded to) carry a structured answer
encoded in that string:

    sparkrl-answer {"kind": "choice", "letters": "AC", "options": ["3", "4", "5"]} \\boxed{A, C}

`decode` reads it back and `sparkrl.verification` grades against it; the trailing `\\boxed{}`
holds the plain answer, so code that only reads the final answer of a gold (recycling, the
judge prompts) sees `A, C` or `1.45`. A gold without the prefix is a plain answer, graded as
before.

This module knows how options and letters are written (`read_letters`, `options_in_text`,
`split_options`, `option_lines`); deciding correctness is `sparkrl.verification`'s job.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass

PREFIX = "sparkrl-answer "
LETTERS = string.ascii_uppercase


@dataclass(frozen=True)
class ChoiceAnswer:
    """The correct option letter(s) of a multiple-choice question, compared as a set.

    options: the option texts in letter order (A first), so that an answer written as the
        option's text is graded too; empty when only the letters are known (options that are
        part of the question text or the image).
    """

    letters: frozenset[str]
    options: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "letters", frozenset(self.letters))
        object.__setattr__(self, "options", tuple(self.options))
        allowed = LETTERS[: len(self.options)] if self.options else LETTERS
        if not self.letters or not self.letters <= set(allowed):
            raise ValueError(f"ChoiceAnswer.letters must be a non-empty set of letters from {allowed!r}, "
                             f"got {sorted(self.letters)}")


@dataclass(frozen=True)
class NumberAnswer:
    """A number, optionally rounded or with a tolerance, and the unit the answer may carry.

    precision: decimals that both numbers are rounded to before comparing (MathVista).
    tolerance: the largest absolute difference still counted right (DynaMath: 0.001).
    unit: text removed from a response's answer before it is read as a number.
    """

    value: str
    precision: int | None = None
    tolerance: float | None = None
    unit: str = ""

    def __post_init__(self) -> None:
        if self.precision is not None and self.tolerance is not None:
            raise ValueError("NumberAnswer takes a precision or a tolerance, not both")
        if self.precision is not None and not (isinstance(self.precision, int) and 0 <= self.precision <= 20):
            raise ValueError(f"NumberAnswer.precision must be an integer in [0, 20], got {self.precision!r}")
        if self.tolerance is not None and not self.tolerance >= 0:
            raise ValueError(f"NumberAnswer.tolerance must be >= 0, got {self.tolerance!r}")


StructuredAnswer = ChoiceAnswer | NumberAnswer


def shown(answer: StructuredAnswer) -> str:
    """The plain answer: `A, C` for letters, the number itself for numbers."""
    if isinstance(answer, ChoiceAnswer):
        return ", ".join(sorted(answer.letters))
    return answer.value


def encode(answer: StructuredAnswer) -> str:
    """The ground-truth string of a structured answer (see the module docstring)."""
    if isinstance(answer, ChoiceAnswer):
        record: dict[str, object] = {"kind": "choice", "letters": "".join(sorted(answer.letters))}
        if answer.options:
            record["options"] = list(answer.options)
    else:
        record = {"kind": "number", "value": answer.value}
        record |= {k: v for k, v in (("precision", answer.precision), ("tolerance", answer.tolerance),
                                     ("unit", answer.unit)) if v not in (None, "")}
    return f"{PREFIX}{json.dumps(record, ensure_ascii=False)} \\boxed{{{shown(answer)}}}"


def decode(gold: str) -> StructuredAnswer | None:
    """The structured answer a gold string encodes, or None for a plain answer."""
    if not gold.startswith(PREFIX):
        return None
    try:
        record, _ = json.JSONDecoder().raw_decode(gold, len(PREFIX))
        if record["kind"] == "choice":
            return ChoiceAnswer(frozenset(record["letters"]), tuple(record.get("options", ())))
        if record["kind"] == "number":
            return NumberAnswer(str(record["value"]), record.get("precision"), record.get("tolerance"),
                                record.get("unit", ""))
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"malformed structured answer {gold[:120]!r}: {err}") from err
    raise ValueError(f"structured answer of unknown kind: {gold[:120]!r}")


# ---------------------------------------------------------------------------------------
# Reading option letters from an answer

_WRAPPER = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
_NOISE = re.compile(r"[$*`\"']|\\[,;! ]")
_PREFIXES = re.compile(r"^(?:the\s+)?(?:correct\s+)?(?:answer|options?|choices?)(?:\s+is)?\s*[:：]?\s*", re.I)
_LETTER_PARENS = re.compile(r"\(\s*([A-Za-z])\s*\)")
_SEPARATORS = re.compile(r"\s*(?:,|;|/|&|\+|、|\band\b|\s)\s*")
# "B. 12 cm", "B) 12", "(B) 12", "B: 12": a letter whose option text follows.
_LETTER_WITH_TEXT = re.compile(r"\(?([A-Z])\s*(?:\)|\.|:|：)(?:\s*\S.*)?", re.DOTALL)


def _clean(text: str) -> str:
    previous = None
    while previous != text:
        previous, text = text, _WRAPPER.sub(r"\1", text)
    text = _NOISE.sub(" ", text).strip().rstrip(".").strip()
    return _PREFIXES.sub("", text).strip()


def read_letters(answer: str, count: int | None = None) -> frozenset[str] | None:
    """The option letters an answer names, or None when it is not written as letters.

    `B`, `(B)`, `\\text{B}`, `B. 12 cm`, `Option B` -> {B}; `A, C`, `C A`, `CA`, `A and C`,
    `(A) and (C)` -> {A, C}. `count` limits the letters to the first `count` (the options of
    the question); a letter beyond them makes the answer not a letter answer.
    """
    allowed = set(LETTERS[:count] if count else LETTERS)
    text = _clean(answer)
    tokens = [t.strip(".") for t in _SEPARATORS.split(_LETTER_PARENS.sub(r" \1 ", text)) if t.strip(".")]
    letters: set[str] = set()
    for token in tokens:
        if len(token) == 1 and token.upper() in allowed:
            letters.add(token.upper())
        elif token.isupper() and set(token) <= allowed:  # "CA": letters run together
            letters.update(token)
        else:
            letters.clear()
            break
    if letters:
        return frozenset(letters)
    match = _LETTER_WITH_TEXT.fullmatch(text)
    if match and match.group(1) in allowed:
        return frozenset(match.group(1))
    return None


# ---------------------------------------------------------------------------------------
# Writing and finding options

_OPTION_LINE = re.compile(r"(?m)^[ \t]*\(?([A-Z])[ \t]*[).:：][ \t]*(\S[^\n]*)$")
_INLINE_START = re.compile(r"(?:^|(?<=\s))\(?A\)")
_INLINE_OPTION = re.compile(r"\(?([A-Z])\)\s*(.+?)(?=\s+\(?[A-Z]\)|$)", re.DOTALL)
_OPTION_PART = re.compile(r"([A-Z])\s*[.:：]\s*(.*)", re.DOTALL)


def _in_order(found: list[tuple[str, str]]) -> tuple[str, ...]:
    """The option texts when the letters run A, B, C, ... (at least two), else ()."""
    letters = "".join(letter for letter, _ in found)
    if len(found) < 2 or letters != LETTERS[: len(found)]:
        return ()
    return tuple(text.strip() for _, text in found)


def options_in_text(question: str) -> tuple[str, ...]:
    """Options written into a question: one per line (`A: 40°`, `(B) 12`, `C. 3`) or inline
    (`(A) 10 (B) 12`, `A) 10 B) 12`); () when there are none."""
    lines = _in_order(_OPTION_LINE.findall(question))
    if lines:
        return lines
    start = _INLINE_START.search(question)
    return _in_order(_INLINE_OPTION.findall(question[start.start():].strip())) if start else ()


def split_options(text: str) -> tuple[str, ...]:
    """Options written as one string, `A. 40°; B. 50°; C. 60°` (We-Math); () when it is not."""
    parts = re.split(r"\s*;\s*(?=[A-Z]\s*[.:：])", text.strip())
    found = [match.groups() for match in map(_OPTION_PART.fullmatch, parts) if match]
    return _in_order(found) if len(found) == len(parts) else ()


def option_lines(options: tuple[str, ...]) -> str:
    """`Choices:` and one `A. text` line per option; only the letters when the options are
    their own letters (the option texts are in the image)."""
    letters = LETTERS[: len(options)]
    if list(options) == list(letters):
        return "Choices: " + ", ".join(letters)
    return "Choices:\n" + "\n".join(f"{letter}. {text}" for letter, text in zip(letters, options))
