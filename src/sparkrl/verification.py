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
- `verify_many`: the batched form, with identical verdicts.

Departure from the authors' checker: math-verify's own time limits use `signal.alarm`, which
only works in the main thread, and the checker is called from the trainer, thread pools and
worker processes alike. So math-verify always runs in a persistent worker subprocess; a
comparison that exceeds its limit kills the worker (a fresh one replaces it) and scores 0.0
with reason "timeout". The limit therefore holds in any thread, against any input. The
authors also fall back to exact match after math-verify; here string equality comes first
because it is cheap and the order cannot change a score.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import select
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType
from typing import Literal

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_MAX_ANSWER_CHARS = 1000
# The worker imports sympy and warms math-verify's caches once; on a loaded 2-core machine
# that can take several seconds, and it is not charged to any comparison's limit.
WORKER_STARTUP_S = 120.0

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
    """The outcome of one check: score 1.0 or 0.0, the answer read, and why."""

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
        scores 0.0 with reason "timeout". The one-time worker start is not counted.
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

# `\boxed{`, `\box{`, `\boxed {`; escaped braces `\{ \}` are content, not grouping.
_BRACE_TOKEN = re.compile(r"\\box(?:ed)?(?![A-Za-z])[ \t]*\{|\\[{}]|[{}]")


def last_boxed(text: str) -> str | None:
    """Content of the last complete, non-empty `\\boxed{...}` (the one closing last), or None.

    One linear pass with a brace stack, so megabytes of unbalanced braces cost milliseconds.
    """
    stack: list[int] = []  # content start for box openers, -1 for plain braces
    best: tuple[int, int] | None = None
    for token in _BRACE_TOKEN.finditer(text):
        lexeme = token.group()
        if lexeme.startswith("\\box"):
            stack.append(token.end())
        elif lexeme == "{":
            stack.append(-1)
        elif lexeme == "}" and stack:
            start = stack.pop()
            if start >= 0 and text[start : token.start()].strip():
                best = (start, token.start())
    if best is None:
        return None
    return text[best[0] : best[1]].strip()


def _clean_tail(captured: str) -> str:
    """Trim what follows a textual marker down to the answer itself."""
    answer = captured.strip().strip("*").strip()
    # "The answer is 42. So ..." keeps "42"; decimals such as 3.5 have no space after the dot.
    answer = re.split(r"\.\s", answer, maxsplit=1)[0]
    return answer.rstrip(".").strip()


def _last_convention(text: str, pattern: re.Pattern[str]) -> str | None:
    found = None
    for match in pattern.finditer(text):
        answer = _clean_tail(match.group(1))
        if answer:
            found = answer
    return found


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
# math-verify in worker subprocesses


def _math_verify_equal(gold: str, pred: str) -> bool:
    """math-verify's judgement, with its signal-based limits off (the parent enforces ours)."""
    from math_verify import parse, verify

    def as_latex(answer: str) -> str:
        return "\\boxed{" + answer.strip().strip("$").strip() + "}"

    gold_parsed = parse(as_latex(gold), parsing_timeout=None)  # type: ignore[arg-type]
    pred_parsed = parse(as_latex(pred), parsing_timeout=None)  # type: ignore[arg-type]
    return bool(gold_parsed and pred_parsed and verify(gold_parsed, pred_parsed, timeout_seconds=None))


def _serve() -> None:
    """Worker main loop: one JSON request per stdin line, one JSON reply per stdout line."""
    import logging
    import resource

    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)  # whatever the libraries print must not corrupt the protocol
    sys.stdout = sys.stderr
    logging.disable(logging.CRITICAL)
    # Import sympy and run its polynomial and radical code once, so that the first timed
    # comparison does not pay half a second of lazy imports.
    _math_verify_equal("(x-1)(x+1)", "x^2-1")
    _math_verify_equal("\\frac{1}{\\sqrt{2}}", "\\frac{\\sqrt{2}}{2}")
    protocol.write("ready\n")
    for line in sys.stdin:
        request = json.loads(line)
        # If the parent died while we are stuck in a C-level computation nobody would kill us;
        # a CPU-time cap a little above the comparison's limit ends the process in any case.
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cap = int(usage.ru_utime + usage.ru_stime + 2 * request["timeout_s"] + 10)
        hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
        resource.setrlimit(resource.RLIMIT_CPU, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
        try:
            reply = {"equal": _math_verify_equal(request["gold"], request["pred"])}
        except Exception as error:  # reported as "checker-error" rather than ending the worker
            reply = {"error": type(error).__name__}
        protocol.write(json.dumps(reply) + "\n")


class _Worker:
    """One math-verify subprocess and its line protocol; at most one request in flight."""

    def __init__(self) -> None:
        package_root = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from sparkrl.verification import _serve; _serve()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self.ready = False
        self.deadline = time.monotonic() + WORKER_STARTUP_S
        self.task: int | None = None
        self._buffer = b""

    def fileno(self) -> int:
        assert self.proc.stdout is not None
        return self.proc.stdout.fileno()

    def send(self, task: int, gold: str, pred: str, timeout_s: float) -> bool:
        """Submit one comparison; False if the worker is gone."""
        assert self.proc.stdin is not None
        line = json.dumps({"gold": gold, "pred": pred, "timeout_s": timeout_s}) + "\n"
        try:
            self.proc.stdin.write(line.encode("utf-8"))
            self.proc.stdin.flush()
        except OSError:  # a broken pipe: the worker died while idle
            return False
        self.task, self.deadline = task, time.monotonic() + timeout_s
        return True

    def read_line(self) -> str | None:
        """After select says readable: a complete line, "" at end of file, None if partial."""
        chunk = os.read(self.fileno(), 65536)
        if not chunk:
            return ""
        self._buffer += chunk
        if b"\n" not in self._buffer:
            return None
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode("utf-8")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            # Closing stdin flushes what a failed send left buffered into a dead pipe.
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()


class _WorkerPool:
    """Idle workers kept between calls, because starting one (sympy import) takes seconds.

    This is the module's one piece of process-wide state: a cache of subprocesses, not of
    results. Each caller takes workers exclusively, so threads never share a pipe.
    """

    def __init__(self) -> None:
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()

    def acquire(self, count: int) -> list[_Worker]:
        with self._lock:
            taken, self._idle = self._idle[:count], self._idle[count:]
        return taken + [_Worker() for _ in range(count - len(taken))]

    def release(self, workers: Sequence[_Worker], keep: int) -> None:
        # A worker with a request still in flight (the caller was interrupted) would answer
        # the next caller's request with a stale reply: never reuse it.
        alive = [w for w in workers if w.proc.poll() is None and w.task is None]
        with self._lock:
            room = max(0, keep - len(self._idle))
            self._idle.extend(alive[:room])
        for worker in [w for w in workers if w not in alive[:room]]:
            worker.kill()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()

    def forget(self) -> None:
        """In a forked child: the inherited workers belong to the parent; never touch them."""
        self._idle = []
        self._lock = threading.Lock()


_POOL = _WorkerPool()
atexit.register(_POOL.close)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_POOL.forget)


def _on_reply(worker: _Worker, line: str, outcomes: list[str | None]) -> bool:
    """Record one protocol line; False if the worker spoke out of turn."""
    if not worker.ready:
        worker.ready = line == "ready"
        return worker.ready
    if worker.task is None:
        return False
    reply = json.loads(line)
    outcomes[worker.task] = "error" if "error" in reply else ("equal" if reply["equal"] else "different")
    worker.task = None
    return True


def _retire(workers: list[_Worker], worker: _Worker, outcomes: list[str | None], outcome: str) -> None:
    """Kill a timed-out or dead worker and record its task's outcome.

    A worker that had started is replaced in place; one that never became ready is dropped, so
    a broken installation ends the batch with "error" verdicts instead of restarting forever.
    """
    worker.kill()
    if worker.task is not None:
        outcomes[worker.task] = outcome
    index = workers.index(worker)
    if worker.ready:
        workers[index] = _Worker()
    else:
        del workers[index]


def _dispatch(workers: list[_Worker], pairs: Sequence[tuple[str, str]], timeout_s: float) -> list[str | None]:
    """Run every (gold, pred) comparison on the workers; one outcome per pair.

    Outcomes: "equal", "different", "timeout", "error" (the worker crashed or never started).
    `workers` is updated in place: killed workers are replaced, failed starts removed.
    """
    outcomes: list[str | None] = [None] * len(pairs)
    pending = deque(range(len(pairs)))
    while workers and (pending or any(w.task is not None for w in workers)):
        for worker in [w for w in workers if w.ready and w.task is None]:
            if not pending:
                break
            task = pending.popleft()
            if not worker.send(task, *pairs[task], timeout_s):
                pending.appendleft(task)  # the worker died while idle; not this answer's fault
                _retire(workers, worker, outcomes, "error")
        waiting = [w for w in workers if w.task is not None or not w.ready]
        if not waiting:
            continue
        wait_s = max(0.0, min(w.deadline for w in waiting) - time.monotonic())
        readable, _, _ = select.select(waiting, [], [], wait_s)
        for worker in readable:
            line = worker.read_line()
            if line == "" or (line is not None and not _on_reply(worker, line, outcomes)):
                _retire(workers, worker, outcomes, "error")
        now = time.monotonic()
        expired = [w for w in waiting if w in workers and (w.task is not None or not w.ready) and w.deadline <= now]
        for worker in expired:
            _retire(workers, worker, outcomes, "timeout" if worker.ready else "error")
    for task in pending:
        outcomes[task] = "error"
    return outcomes


def _math_verify_outcomes(pairs: Sequence[tuple[str, str]], config: VerifierConfig) -> list[str | None]:
    if not pairs:
        return []
    count = min(config.worker_count, len(pairs))
    workers = _POOL.acquire(count)
    try:
        return _dispatch(workers, pairs, config.timeout_s)
    finally:
        # Keep enough idle workers for concurrent single calls from a thread pool too.
        _POOL.release(workers, keep=max(config.worker_count, _default_workers()))


_OUTCOME_VERDICT = {
    "equal": (1.0, "math-verify"),
    "different": (0.0, "mismatch"),
    "timeout": (0.0, "timeout"),
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
