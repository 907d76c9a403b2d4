"""Answer verification: the reward signal of every SPARK task.

SPARK rewards a policy answer, a judge verdict and a reflection answer with the same check:
read the final answer from the response (the last `\\boxed{...}`), compare it with the ground
truth, score 1.0 or 0.0. This module holds that check:

- `extract_final_answer`: the last `\\boxed{}` (nested braces, `\\box{}`, `\\boxed {}`), then an
  ordered, configurable tuple of textual conventions (`#### 42`, `A: 42`, `Answer: 42`,
  `The answer is 42`). The gold may be a full solution; its final answer is read the same way.
- `verify_math`: a fast path that never touches sympy (normalised string equality, plain
  number comparison), then math-verify for everything else.
- `verify_label`: Yes/No and option-letter verdicts of the judge tasks.
- structured golds (`sparkrl.choices`): a multiple-choice answer is right when it names the
  correct option letter(s) (as a set, in any order and separator) or the correct option's
  text; a number with a published precision is right when both round to the same decimals,
  one with a tolerance when it is within it. Plain golds are graded as above.
- `verify_many`: the batched form, with identical verdicts.

Departure from the authors' checker: math-verify's own time limits use `signal.alarm`, which
only works in the main thread, and the checker is called from the trainer, thread pools and
worker processes alike. So math-verify always runs in a persistent worker subprocess
(`sparkrl.verification_workers`); a comparison that exceeds its limit kills the worker and
scores 0.0 with reason "timeout". The limit therefore holds in any thread, against any input,
and for the call after a timeout too (the worker is restarted in the background; a comparison
that finds only restarting workers and is not served within its limit scores 0.0 with reason
"checker-busy", so that it is not mistaken for an answer that ran too long). The
authors also fall back to exact match after math-verify; here string equality comes first
because it is cheap and the order cannot change a score.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType
from typing import Literal

from sparkrl import choices
from sparkrl.verification_workers import math_verify_outcomes

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_MAX_ANSWER_CHARS = 1000

# Named answer conventions, tried in the configured order after `\boxed{}`. Each captures
# the rest of the line after its marker; the last non-empty occurrence in the text wins.
FALLBACK_PATTERNS = MappingProxyType(
    {
        "####": re.compile(r"####[ \t]*([^\n]*)"),
        # GSM8K-solutions convention: `A:` opening a line (case-sensitive, so "a:" in prose
        # and the "Answer:" convention do not trigger it).
        "A:": re.compile(r"(?m)^[ \t*]*A:[ \t]*([^\n]*)"),
        "Answer:": re.compile(r"(?i)\banswer\**[ \t]*:[ \t*]*([^\n]*)"),
        "The answer is": re.compile(r"(?i)\banswer[ \t]+is[ \t]*:?[ \t]*([^\n]*)"),
    }
)
DEFAULT_FALLBACKS: tuple[str, ...] = ("####", "A:", "Answer:", "The answer is")

Kind = Literal["math", "label"]


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check: score 1.0 or 0.0, the answer read, and why.

    reason: "string-match", "number-match", "math-verify", "label-match" or "choice-match"
        (score 1.0);
        "mismatch", "no-answer", "answer-too-long", "timeout" (math-verify ran past the limit),
        "checker-busy" (it never ran: no math-verify worker was free within the limit, while
        workers killed by earlier timeouts restarted) or "checker-error" (the worker process
        died) (score 0.0).
    """

    score: float
    extracted: str | None
    reason: str

    def __post_init__(self) -> None:
        if self.score not in (0.0, 1.0):
            raise ValueError(f"Verdict.score must be 0.0 or 1.0, got {self.score!r}")

    @property
    def correct(self) -> bool:
        return self.score == 1.0

    def to_dict(self) -> dict[str, object]:
        return {"score": self.score, "correct": self.correct, "extracted": self.extracted, "reason": self.reason}


@dataclass(frozen=True)
class VerifierConfig:
    """How answers are checked.

    timeout_s: the most one math-verify comparison may take (wall clock), after which it
        scores 0.0 with reason "timeout", or "checker-busy" if it spent that time waiting for
        a worker restarted after an earlier timeout. Waiting behind busy workers of a batch is
        not counted, nor is a worker's first start (at the first call of a process, or when
        concurrent callers ask for more workers than the pool holds).
    fallbacks: names from FALLBACK_PATTERNS, tried in order when there is no `\\boxed{}`.
    workers: math-verify worker processes for `verify_many` (None: one per core, at most 8).
    max_answer_chars: longer extracted answers are only compared by exact equality; nothing
        that long is a real final answer, and normalising it would waste the time budget.
    """

    timeout_s: float = DEFAULT_TIMEOUT_S
    fallbacks: tuple[str, ...] = DEFAULT_FALLBACKS
    workers: int | None = None
    max_answer_chars: int = DEFAULT_MAX_ANSWER_CHARS

    def __post_init__(self) -> None:
        if not (isinstance(self.timeout_s, (int, float)) and 0 < self.timeout_s <= 3600):
            raise ValueError(f"timeout_s must be in (0, 3600] seconds, got {self.timeout_s!r}")
        object.__setattr__(self, "fallbacks", tuple(self.fallbacks))
        unknown = [name for name in self.fallbacks if name not in FALLBACK_PATTERNS]
        if unknown:
            raise ValueError(f"unknown fallback conventions {unknown}; known: {list(FALLBACK_PATTERNS)}")
        if self.workers is not None and not (isinstance(self.workers, int) and self.workers >= 1):
            raise ValueError(f"workers must be a positive integer or None, got {self.workers!r}")
        if self.max_answer_chars < 1:
            raise ValueError(f"max_answer_chars must be positive, got {self.max_answer_chars}")

    @property
    def worker_count(self) -> int:
        return self.workers or _default_workers()


def _default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


# ---------------------------------------------------------------------------------------
# Extraction

# `\boxed{`, `\box{`, `\boxed {`; escaped braces `\{ \}` are content, not grouping. A run of
# plain braces is one token, so a megabyte of `{` costs one step, not a million.
_BRACE_TOKEN = re.compile(r"\\box(?:ed)?(?![A-Za-z])[ \t]*\{|\\[{}]|\{+|\}+")


def last_boxed(text: str) -> str | None:
    """Content of the last complete, non-empty `\\boxed{...}` (the one closing last), or None.

    One linear pass with a brace stack, so megabytes of unbalanced braces cost milliseconds.
    """
    stack: list[int] = []  # content start (>= 0) of a box opener, or -n for n plain braces
    best: tuple[int, int] | None = None
    # Nothing after the last closing brace can close a box.
    for token in _BRACE_TOKEN.finditer(text, 0, text.rfind("}") + 1):
        lexeme = token.group()
        if lexeme.startswith("\\box"):
            stack.append(token.end())
        elif lexeme[0] == "{":
            if stack and stack[-1] < 0:
                stack[-1] -= len(lexeme)
            else:
                stack.append(-len(lexeme))
        elif lexeme[0] == "}":
            best = _close(text, stack, token.start(), len(lexeme), best)
    if best is None:
        return None
    return text[best[0] : best[1]].strip()


def _close(
    text: str, stack: list[int], position: int, count: int, best: tuple[int, int] | None
) -> tuple[int, int] | None:
    """Pop `count` closing braces from `position` off the stack; the last non-empty box closed
    (or `best` if none). Closing braces beyond the stack are stray and ignored."""
    while count and stack:
        top = stack[-1]
        if top < 0:
            used = min(count, -top)
            stack[-1] += used
            if stack[-1] == 0:
                stack.pop()
        else:
            used = 1
            stack.pop()
            if text[top:position].strip():
                best = (top, position)
        position, count = position + used, count - used
    return best


def _clean_tail(captured: str) -> str:
    """Trim what follows a textual marker down to the answer itself."""
    answer = captured.strip().strip("*").strip()
    # "The answer is 42. So ..." keeps "42"; decimals such as 3.5 have no space after the dot.
    answer = re.split(r"\.\s", answer, maxsplit=1)[0]
    return answer.rstrip(".").strip()


def _last_convention(text: str, pattern: re.Pattern[str]) -> str | None:
    # From the last occurrence back; findall keeps a flood of empty markers cheap.
    for captured in reversed(pattern.findall(text)):
        answer = _clean_tail(captured) if captured.strip() else ""
        if answer:
            return answer
    return None


def extract_final_answer(text: str, fallbacks: Sequence[str] = DEFAULT_FALLBACKS) -> str | None:
    """The final answer of a response: the last `\\boxed{}`, else the first fallback that matches."""
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    for name in fallbacks:
        answer = _last_convention(text, FALLBACK_PATTERNS[name])
        if answer is not None:
            return answer
    return None


# ---------------------------------------------------------------------------------------
# Normalisation (the string and number fast paths)

_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mbox|operatorname)[ \t]*\{([^{}]*)\}")
_LATEX_NOISE = re.compile(r"\\left|\\right|\\displaystyle|\\[!,;: ]|~|\^\{?\\circ\}?|\\\$|\$|\\%|%|\\[()\[\]]")
_THOUSANDS_COMMA = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
# A number followed only by words: "18 dollars", "5 km/h". Leading "pi" keeps "2 pi" whole.
_NUMBER_WITH_UNITS = re.compile(r"([-+]?\d[\d,]*(?:\.\d+)?)\s*(?!pi\b)[a-z]{2,}[a-z\s./^]*")
_TRAILING_ZEROS = re.compile(r"(?<![\d.])(\d+)\.(\d*?)0+(?![\d.])")
_BARE_POINT = re.compile(r"(?<![\d.])(\d+)\.(?![\d])")
_PLAIN_NUMBER = re.compile(r"([-+]?)(\d{1,60})(?:\.(\d{1,60}))?")
_PLAIN_FRACTION = re.compile(r"([-+]?)(?:(\d{1,60})/(\d{1,60})|\\frac\{(\d{1,60})\}\{(\d{1,60})\})")


def _unwrap_text(s: str) -> str:
    previous = None
    while previous != s:
        previous, s = s, _TEXT_WRAPPER.sub(r"\1", s)
    return s


def normalize_answer(answer: str) -> str:
    """A canonical string form of a math answer for equality checks.

    Drops `$`, `\\text{}`-like wrappers, spacing macros, degree and percent signs, thousands
    commas, trailing zeros of decimals, a trailing unit word, a leading `x =`, spaces and case.
    """
    s = _unwrap_text(answer.strip())
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("{,}", ",")
    s = _LATEX_NOISE.sub(" ", s).strip().lower().rstrip(".").strip()
    s = re.sub(r"^[a-z]\s*=\s*", "", s)
    units = _NUMBER_WITH_UNITS.fullmatch(s)
    if units:
        s = units.group(1)
    s = _THOUSANDS_COMMA.sub("", s)
    s = _TRAILING_ZEROS.sub(lambda m: f"{m.group(1)}.{m.group(2)}" if m.group(2) else m.group(1), s)
    s = _BARE_POINT.sub(r"\1", s)
    return re.sub(r"\s+", "", s)


def as_number(normalized: str) -> Fraction | None:
    """The exact value of a normalised plain number or fraction (bounded digits), else None."""
    match = _PLAIN_NUMBER.fullmatch(normalized)
    if match:
        sign, whole, decimals = match.groups()
        value = Fraction(int(whole + (decimals or "")), 10 ** len(decimals or ""))
        return -value if sign == "-" else value
    match = _PLAIN_FRACTION.fullmatch(normalized)
    if match:
        sign, num, den, frac_num, frac_den = match.groups()
        numerator, denominator = int(num or frac_num), int(den or frac_den)
        if denominator == 0:
            return None
        value = Fraction(numerator, denominator)
        return -value if sign == "-" else value
    return None


def _fast_math_verdict(extracted: str, gold: str, max_chars: int) -> Verdict | None:
    """A verdict reached without sympy, or None when math-verify must decide."""
    if extracted == gold:
        return Verdict(1.0, extracted, "string-match")
    if len(extracted) > max_chars or len(gold) > max_chars:
        return Verdict(0.0, extracted, "answer-too-long")
    pred_norm, gold_norm = normalize_answer(extracted), normalize_answer(gold)
    if pred_norm == gold_norm and pred_norm:
        return Verdict(1.0, extracted, "string-match")
    # A percent sign changes the value (50% = 0.5 to math-verify), so those go to math-verify.
    if "%" in extracted or "%" in gold:
        return None
    pred_value, gold_value = as_number(pred_norm), as_number(gold_norm)
    if pred_value is None or gold_value is None:
        return None
    if pred_value == gold_value:
        return Verdict(1.0, extracted, "number-match")
    # Near-equal numbers are left to math-verify's own rounding rules.
    scale = max(1, abs(pred_value), abs(gold_value))
    if abs(pred_value - gold_value) <= Fraction(1, 10**5) * scale:
        return None
    return Verdict(0.0, extracted, "mismatch")


# ---------------------------------------------------------------------------------------
# Structured golds (multiple choice, numbers with a precision; see sparkrl.choices)


def _choice_verdict(extracted: str, answer: choices.ChoiceAnswer, max_chars: int) -> Verdict:
    letters = choices.read_letters(extracted, len(answer.options) or None)
    if letters is None:  # written as the option's text: string and number equality, no sympy
        letters = frozenset(
            letter for letter, option in zip(choices.LETTERS, answer.options)
            if (verdict := _fast_math_verdict(extracted, option, max_chars)) is not None and verdict.correct
        )
    return Verdict(1.0, extracted, "choice-match") if letters == answer.letters else Verdict(0.0, extracted, "mismatch")


def _number_verdict(extracted: str, answer: choices.NumberAnswer) -> Verdict:
    stripped = extracted.replace(answer.unit, " ") if answer.unit else extracted
    pred, gold = as_number(normalize_answer(stripped)), as_number(normalize_answer(answer.value))
    if pred is None or gold is None:
        return Verdict(0.0, extracted, "mismatch")
    if answer.precision is not None:
        # MathVista's rule: str(round(float(prediction), precision)) against the answer.
        right = round(float(pred), answer.precision) == round(float(gold), answer.precision)
    elif answer.tolerance is not None:
        right = abs(float(pred) - float(gold)) <= answer.tolerance
    else:
        right = pred == gold
    return Verdict(1.0, extracted, "number-match") if right else Verdict(0.0, extracted, "mismatch")


def _structured_verdict(extracted: str, answer: choices.StructuredAnswer, max_chars: int) -> Verdict:
    if len(extracted) > max_chars:
        return Verdict(0.0, extracted, "answer-too-long")
    if isinstance(answer, choices.ChoiceAnswer):
        return _choice_verdict(extracted, answer, max_chars)
    return _number_verdict(extracted, answer)


# ---------------------------------------------------------------------------------------
# Labels (judge verdicts, option letters)

_OPTION_PREFIX = re.compile(r"^(?:option|choice)\s+")
_LETTER_WITH_TEXT = re.compile(r"^\(?([a-z])(?:\)|\.|:)\s.*$", re.DOTALL)


def normalize_label(label: str) -> str:
    """`(A)`, `\\text{Yes}`, `**yes**.`, `Option B`, `C) 12` -> `a`, `yes`, `yes`, `b`, `c`."""
    s = _unwrap_text(label.strip())
    s = re.sub(r"[$*`\"']", "", s).strip().lower()
    s = s.rstrip(".!").strip()
    s = _OPTION_PREFIX.sub("", s)
    letter = _LETTER_WITH_TEXT.match(s)
    if letter:
        return letter.group(1)
    while len(s) >= 2 and (s[0], s[-1]) in {("(", ")"), ("[", "]"), ("{", "}")}:
        s = s[1:-1].strip()
    return s


def verify_label(
    response: str, gold: str, *, fallbacks: Sequence[str] = DEFAULT_FALLBACKS, max_answer_chars: int = 200
) -> Verdict:
    """Score a judge response whose gold is a label (`Yes`/`No`, `A`/`B`/...)."""
    config = VerifierConfig(fallbacks=tuple(fallbacks), max_answer_chars=max_answer_chars)
    extracted = extract_final_answer(response, config.fallbacks)
    if extracted is None:
        return Verdict(0.0, None, "no-answer")
    if len(extracted) > config.max_answer_chars:
        return Verdict(0.0, extracted, "answer-too-long")
    expected = normalize_label(extract_final_answer(gold, config.fallbacks) or gold)
    if normalize_label(extracted) == expected and expected:
        return Verdict(1.0, extracted, "label-match")
    return Verdict(0.0, extracted, "mismatch")


# ---------------------------------------------------------------------------------------
# math-verify (in worker subprocesses, see sparkrl.verification_workers)


def _math_verify_outcomes(pairs: Sequence[tuple[str, str]], config: VerifierConfig) -> list[str | None]:
    # Keep enough idle workers for concurrent single calls from a thread pool, plus the spare.
    keep = max(config.worker_count, _default_workers()) + 1
    return math_verify_outcomes(pairs, config.timeout_s, config.worker_count, keep)


_OUTCOME_VERDICT = {
    "equal": (1.0, "math-verify"),
    "different": (0.0, "mismatch"),
    "timeout": (0.0, "timeout"),
    "busy": (0.0, "checker-busy"),
    "error": (0.0, "checker-error"),
}


def _verify_math_batch(responses: Sequence[str], golds: Sequence[str], config: VerifierConfig) -> list[Verdict]:
    verdicts: list[Verdict | None] = []
    slow: list[tuple[int, str, str]] = []
    for i, (response, gold) in enumerate(zip(responses, golds, strict=True)):
        extracted = extract_final_answer(response, config.fallbacks)
        if extracted is None:
            verdicts.append(Verdict(0.0, None, "no-answer"))
            continue
        structured = choices.decode(gold)
        if structured is not None:
            verdicts.append(_structured_verdict(extracted, structured, config.max_answer_chars))
            continue
        gold_answer = extract_final_answer(gold, config.fallbacks) or gold.strip()
        verdicts.append(_fast_math_verdict(extracted, gold_answer, config.max_answer_chars))
        if verdicts[-1] is None:
            slow.append((i, gold_answer, extracted))
    outcomes = _math_verify_outcomes([(gold, pred) for _, gold, pred in slow], config)
    for (i, _, extracted), outcome in zip(slow, outcomes, strict=True):
        score, reason = _OUTCOME_VERDICT[outcome or "error"]
        verdicts[i] = Verdict(score, extracted, reason)
    return [v for v in verdicts if v is not None]


def verify_math(
    response: str,
    gold: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    fallbacks: Sequence[str] = DEFAULT_FALLBACKS,
) -> Verdict:
    """Score a response against a math ground truth (a bare answer or a full solution)."""
    config = VerifierConfig(timeout_s=timeout_s, fallbacks=tuple(fallbacks), workers=1)
    return _verify_math_batch([response], [gold], config)[0]


def verify_many(
    responses: Sequence[str],
    golds: Sequence[str],
    *,
    kind: Kind = "math",
    workers: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    fallbacks: Sequence[str] = DEFAULT_FALLBACKS,
) -> list[Verdict]:
    """Verdicts for many (response, gold) pairs, equal to checking them one by one.

    The fast path runs in this process; only the answers it cannot decide go to math-verify,
    spread over `workers` subprocesses, each comparison under its own `timeout_s`.
    """
    if len(responses) != len(golds):
        raise ValueError(f"{len(responses)} responses but {len(golds)} golds")
    config = VerifierConfig(timeout_s=timeout_s, fallbacks=tuple(fallbacks), workers=workers)
    if kind == "label":
        return [verify_label(r, g, fallbacks=config.fallbacks) for r, g in zip(responses, golds)]
    if kind != "math":
        raise ValueError(f"kind must be 'math' or 'label', got {kind!r}")
    return _verify_math_batch(responses, golds, config)
