"""Tests for sparkrl.verification: extraction, normalisation, math and label verdicts, time
limits against hostile inputs, batched checking, and agreement with GSM8K correctness labels."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sparkrl import verification, verification_workers
from sparkrl.verification import (
    DEFAULT_FALLBACKS,
    Verdict,
    VerifierConfig,
    extract_final_answer,
    last_boxed,
    normalize_answer,
    normalize_label,
    verify_label,
    verify_many,
    verify_math,
)

LIMIT_S = 0.5
# What a call may take beyond its limit: killing a worker, starting its replacement, reading
# a megabyte response in this process.
MARGIN_S = 0.45
# Legitimate comparisons must finish within it even on a busy machine.
BATCH_LIMIT_S = 1.5


@pytest.fixture(scope="module")
def warm_worker() -> None:
    """Start the first math-verify workers outside any timed section: a worker's first start
    is not charged to any comparison (later restarts are)."""
    assert verify_math(r"\boxed{x+1}", "1+x").reason == "math-verify"


def _wait_until_started(pool: verification_workers._WorkerPool) -> None:
    deadline = time.monotonic() + 120
    while not all(worker.check_ready() for worker in pool._idle):
        assert time.monotonic() < deadline, "a math-verify worker did not start within 120 s"
        time.sleep(0.05)


@pytest.fixture
def started_workers(warm_worker: None) -> None:
    """Idle workers that have all started, as between two training steps: the restart of a
    worker killed by an earlier test's timeout must not decide a later test's verdicts."""
    _wait_until_started(verification_workers._POOL)
    assert len(verification_workers._POOL._idle) >= 2  # a worker and the spare


# A worker that speaks the pool's protocol but, instead of running math-verify, starts after
# argv[1] seconds and takes `gold` seconds per comparison: timings the tests control.
SCRIPTED_WORKER = """
import json, sys, time
time.sleep(float(sys.argv[1]))
print("ready", flush=True)
for line in sys.stdin:
    time.sleep(float(json.loads(line)["gold"]))
    print(json.dumps({"equal": True}), flush=True)
"""


def _scripted_worker(*, startup_s: float, charged: bool) -> verification_workers._Worker:
    command = [sys.executable, "-c", SCRIPTED_WORKER, str(startup_s)]
    return verification_workers._Worker(charged=charged, command=command)


class _CountingPool(verification_workers._WorkerPool):
    """A pool for one `_Dispatch`: it counts restarts instead of starting math-verify."""

    def __init__(self, idle: list[verification_workers._Worker]) -> None:
        super().__init__()
        self._idle = idle
        self.restarts = 0

    def restart(self) -> None:
        self.restarts += 1


@pytest.fixture
def slow_restarts(started_workers: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Exactly two started idle workers, and restarts that never finish: which calls find a
    started worker no longer depends on how fast sympy imports on this machine."""
    pool = verification_workers._POOL
    for worker in pool._idle[2:]:
        worker.kill()
    pool._idle = pool._idle[:2]
    never_starts = ["sleep", "600"]

    def restart() -> None:
        pool._idle.append(verification_workers._Worker(charged=True, command=never_starts))

    monkeypatch.setattr(pool, "restart", restart)
    yield
    monkeypatch.undo()
    for worker in [w for w in pool._idle if w.proc.args == never_starts]:
        pool._idle.remove(worker)
        worker.kill()
    while len(pool._idle) < 2:
        pool.restart()



# --- extraction -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"so \boxed{42}", "42"),
        (r"first \boxed{1} then \boxed{2}", "2"),
        (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),
        (r"\boxed{\sqrt{\frac{a}{b}} + {c}}", r"\sqrt{\frac{a}{b}} + {c}"),
        (r"\box{7}", "7"),
        (r"\boxed {7}", "7"),
        (r"\boxed{ 7 }", "7"),
        (r"\boxed{\{1, 2\}}", r"\{1, 2\}"),
        (r"\boxed{3} and a truncated \boxed{\frac{1", "3"),
        (r"\boxed{3} then \boxed{}", "3"),
        (r"\boxed{\boxed{5}}", r"\boxed{5}"),
        (r"$\boxed{5}$ #### 6", "5"),
    ],
)
def test_last_boxed_handles_nesting_spacing_and_truncation(text: str, expected: str) -> None:
    assert extract_final_answer(text) == expected


def test_boxedx_macro_is_not_a_box() -> None:
    assert last_boxed(r"\boxedx{3}") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("step one\n#### 1,234", "1,234"),
        ("work <<2*9=18>>18\nA: 18", "18"),
        ("work\n**A:** 18", "18"),
        ("Answer: 12 apples", "12 apples"),
        ("**Final Answer:** $5$", "$5$"),
        ("So the answer is 42.", "42"),
        ("The final answer is 3.5. Hope that helps", "3.5"),
        ("The answer is: -7", "-7"),
        ("Answer: 1\nlater... Answer: 2", "2"),
    ],
)
def test_each_fallback_convention(text: str, expected: str) -> None:
    assert extract_final_answer(text) == expected


@pytest.mark.parametrize(
    "text",
    ["no answer at all", "lowercase a: 5", "Q: what? A: mid-line is not the convention", "#### \n", ""],
)
def test_no_answer(text: str) -> None:
    assert extract_final_answer(text) is None


def test_fallback_order_is_configurable() -> None:
    text = "The answer is 5\n#### 6"
    assert extract_final_answer(text) == "6"
    assert extract_final_answer(text, fallbacks=("The answer is", "####")) == "5"
    assert extract_final_answer(text, fallbacks=()) is None


def test_unknown_fallback_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown fallback"):
        verify_math("#### 1", "1", fallbacks=("Final:",))


@pytest.mark.parametrize(
    "kwargs", [{"timeout_s": 0}, {"timeout_s": -1.0}, {"workers": 0}, {"max_answer_chars": 0}, {"timeout_s": "5"}]
)
def test_config_validation(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        VerifierConfig(**kwargs)


def test_verdict_score_must_be_binary() -> None:
    with pytest.raises(ValueError):
        Verdict(0.5, "1", "string-match")
    assert Verdict(1.0, "1", "string-match").correct


# --- normalisation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("$1,000$", "1000"),
        ("1{,}000", "1000"),
        ("18.0", "18"),
        ("18.", "18"),
        ("3.50", "3.5"),
        (r"\$18", "18"),
        (r"18 \text{ dollars}", "18"),
        ("5 km/h", "5"),
        (r"\textbf{Seven}", "seven"),
        (r"\dfrac{1}{2}", r"\frac{1}{2}"),
        ("x = 5", "5"),
        (r"50\%", "50"),
        (r"90^\circ", "90"),
        (r"\left( 1, 2 \right)", "(1,2)"),
        ("2 pi", "2pi"),
        ("10.05", "10.05"),
    ],
)
def test_normalize_answer(raw: str, expected: str) -> None:
    assert normalize_answer(raw) == expected


# --- math verdicts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "gold", "score", "reason"),
    [
        (r"\boxed{18}", "18", 1.0, "string-match"),
        ("She makes $18\nA: 18", "Janet sells 9 eggs.\nA: 18", 1.0, "string-match"),
        ("#### 18", "... so 9 * 2 = <<9*2=18>>18\n#### 18", 1.0, "string-match"),
        (r"\boxed{\$1,000.00}", "1000", 1.0, "string-match"),
        (r"\boxed{\frac{6}{4}}", "1.5", 1.0, "number-match"),
        (r"\boxed{17}", "18", 0.0, "mismatch"),
        ("I think it is 18", "18", 0.0, "no-answer"),
        (r"\boxed{\frac{\sqrt{2}}{2}}", r"\frac{1}{\sqrt{2}}", 1.0, "math-verify"),
        (r"\boxed{50\%}", "0.5", 1.0, "math-verify"),
        (r"\boxed{x^2 - 1}", "(x-1)(x+1)", 1.0, "math-verify"),
        (r"\boxed{x^2 + 1}", "(x-1)(x+1)", 0.0, "mismatch"),
    ],
)
def test_verify_math(started_workers: None, response: str, gold: str, score: float, reason: str) -> None:
    verdict = verify_math(response, gold)
    assert (verdict.score, verdict.reason) == (score, reason)


def test_near_equal_numbers_are_left_to_math_verify(started_workers: None) -> None:
    # math-verify rounds floats; a bare string comparison would call these different.
    assert verify_math(r"\boxed{0.3333333}", "0.33333333").reason in {"math-verify", "mismatch"}
    assert verify_math(r"\boxed{0.3333333}", "0.33333333").reason != "number-match"


def test_overlong_answers_are_not_normalised() -> None:
    verdict = verify_math(r"\boxed{" + "1" * 5000 + "}", "1")
    assert verdict == Verdict(0.0, "1" * 5000, "answer-too-long")


# --- time limits ------------------------------------------------------------------------

HOSTILE = {
    "power tower": (r"\boxed{10^{10^{10^{10}}}}", "5", 0.0),
    "huge power": (r"\boxed{9^{9^{9}}}", "7", 0.0),
    "huge factorial": (r"\boxed{(10^{100})!}", "3", 0.0),
    "python power": (r"\boxed{9**9**9}", "9^{9^{9}}", 0.0),
    "deep fractions": ("\\boxed{" + "\\frac{1}{" * 100 + "2" + "}" * 100 + "}", "x", 0.0),
    "long sum": ("\\boxed{" + "+".join(["x^{2}"] * 150) + "}", "151x^2", 0.0),
    "open boxes": ("\\boxed{" * 200_000, "1", 0.0),
    "open braces": ("{" * 1_000_000 + r"\boxed{1}", "1", 1.0),
    "megabyte prose": ("word " * 250_000 + "The answer is 7", "7", 1.0),
    "megabyte box": ("\\boxed{" + "1+" * 500_000 + "1}", "1000001", 0.0),
    "many markers": ("#### \n" * 200_000, "1", 0.0),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_input_respects_the_time_limit(warm_worker: None, name: str) -> None:
    # No untimed warm-up: the worker killed by the previous input's timeout may still be
    # restarting, and that must not stretch this call either.
    response, gold, score = HOSTILE[name]
    start = time.monotonic()
    verdict = verify_math(response, gold, timeout_s=LIMIT_S)
    assert time.monotonic() - start <= LIMIT_S + MARGIN_S
    assert verdict.score == score
    if name == "power tower":
        assert verdict.reason == "timeout"


def _timed(response: str, gold: str, timeout_s: float = LIMIT_S) -> tuple[str, float]:
    start = time.monotonic()
    verdict = verify_math(response, gold, timeout_s=timeout_s)
    return verdict.reason, time.monotonic() - start


def test_the_call_after_a_timeout_does_not_wait_for_the_restart(started_workers: None) -> None:
    reason, elapsed = _timed(HOSTILE["power tower"][0], "5")
    assert reason == "timeout" and elapsed <= LIMIT_S + MARGIN_S
    reason, elapsed = _timed(r"\boxed{y+1}", "1+y")
    assert reason == "math-verify" and elapsed <= LIMIT_S + MARGIN_S


def test_repeated_timeouts_keep_every_call_within_its_limit(slow_restarts: None) -> None:
    # More timeouts in a row than there are started workers: the first two timeouts each use
    # up a started worker, and then calls find only restarting workers. They answer
    # "checker-busy" (they never ran) within their limit rather than wait for a restart.
    reasons = []
    for _ in range(3):
        for response, gold in [(HOSTILE["power tower"][0], "5"), (r"\boxed{y+1}", "1+y")]:
            reason, elapsed = _timed(response, gold)
            assert elapsed <= LIMIT_S + MARGIN_S, (reasons, reason, elapsed)
            reasons.append(reason)
    assert reasons == ["timeout", "math-verify", "timeout"] + ["checker-busy"] * 3


def test_a_call_that_finds_only_a_restarting_worker_answers_checker_busy_in_time(started_workers: None) -> None:
    pool = verification_workers._POOL
    pool.close()
    pool.restart()  # what a timeout leaves when no started spare is left
    reason, elapsed = _timed(r"\boxed{y+1}", "1+y", timeout_s=0.2)
    assert reason == "checker-busy" and elapsed <= 0.2 + MARGIN_S
    _wait_until_started(pool)
    assert _timed(r"\boxed{y+1}", "1+y")[0] == "math-verify"  # the restarted worker serves


def test_each_item_of_a_batch_after_a_timeout_stays_within_its_limit(started_workers: None) -> None:
    responses = [HOSTILE["power tower"][0], r"\boxed{y+1}", r"\boxed{2y}"]
    start = time.monotonic()
    verdicts = verify_many(responses, ["5", "1+y", "y+y"], workers=1, timeout_s=LIMIT_S)
    assert time.monotonic() - start <= LIMIT_S + MARGIN_S
    assert [v.reason for v in verdicts] == ["timeout", "math-verify", "math-verify"]


def test_a_comparison_waiting_for_a_restart_gets_a_full_limit_on_a_started_worker() -> None:
    # Two comparisons of RUN_S each, one started worker, one restart that never finishes: the
    # second comparison's clock starts on the restart, and when the started worker frees up at
    # most MARGIN_S of that clock is left. It must get a fresh limit there, not time out and
    # kill the healthy worker.
    limit_s, run_s = 1.2, 1.2 - MARGIN_S
    started = _scripted_worker(startup_s=0, charged=False)
    restarting = verification_workers._Worker(charged=True, command=["sleep", "600"])
    pool = _CountingPool([])
    try:
        while not started.check_ready():
            time.sleep(0.01)
        pairs = [(str(run_s), "x")] * 2
        outcomes = verification_workers._Dispatch([started, restarting], pairs, limit_s, pool).run()
    finally:
        started.kill()
        restarting.kill()
    assert outcomes == ["equal", "equal"]
    assert pool.restarts == 0


def test_a_stand_in_still_starting_is_charged() -> None:
    # The pool's spare has not started yet when a batch's worker times out and the spare
    # stands in: the next comparison must not wait for its start beyond its own limit.
    timing_out = _scripted_worker(startup_s=0, charged=False)
    spare = _scripted_worker(startup_s=4 * LIMIT_S + 1, charged=False)
    pool = _CountingPool([spare])
    dispatch = verification_workers._Dispatch([timing_out], [("600", "x"), ("0", "x")], LIMIT_S, pool)
    try:
        while not timing_out.check_ready():
            time.sleep(0.01)
        start = time.monotonic()
        outcomes = dispatch.run()
        elapsed = time.monotonic() - start
    finally:
        for worker in [timing_out, spare]:
            worker.kill()
    assert outcomes == ["timeout", "busy"]
    assert elapsed <= 2 * LIMIT_S + MARGIN_S
    assert pool.restarts == 1


def test_time_limit_holds_outside_the_main_thread(started_workers: None) -> None:
    results: list[tuple[Verdict, float]] = []

    def check() -> None:
        start = time.monotonic()
        results.append((verify_math(HOSTILE["power tower"][0], "5", timeout_s=LIMIT_S), time.monotonic() - start))

    thread = threading.Thread(target=check)
    thread.start()
    thread.join(timeout=LIMIT_S + 30)
    ((verdict, elapsed),) = results
    assert verdict.reason == "timeout"
    assert elapsed <= LIMIT_S + MARGIN_S


def test_concurrent_threads_get_their_own_workers(started_workers: None) -> None:
    pairs = [(rf"\boxed{{\frac{{{k}}}{{\sqrt{{2}}}}}}", rf"\frac{{{k}\sqrt{{2}}}}{{2}}") for k in range(1, 7)]
    pairs += [(r"\boxed{x^2+2}", "(x+1)^2")] * 2
    with ThreadPoolExecutor(max_workers=2) as pool:
        threaded = list(pool.map(lambda pair: verify_math(*pair), pairs))
    assert [v.reason for v in threaded] == ["math-verify"] * 6 + ["mismatch"] * 2


def test_a_worker_that_died_while_idle_is_replaced(started_workers: None) -> None:
    for worker in verification_workers._POOL._idle:
        worker.proc.kill()
        worker.proc.wait()
    assert verify_math(r"\boxed{2y}", "y+y").reason == "math-verify"


# --- labels -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "gold"),
    [
        (r"\boxed{Yes}", "Yes"),
        (r"\boxed{yes}", "Yes"),
        (r"\boxed{ YES. }", "Yes"),
        (r"\boxed{\text{Yes}}", "Yes"),
        (r"\boxed{\textbf{No}}", "No"),
        (r"$\boxed{\text{no}}$.", "No"),
        ("Answer: **Yes**", "Yes"),
        ("The answer is no.", "No"),
        (r"\boxed{(A)}", "A"),
        (r"\boxed{a}", "A"),
        (r"\boxed{B}", "(B)"),
        (r"\boxed{\text{(B)}}", "B"),
        (r"\boxed{Option C}", "C"),
        (r"\boxed{D) 42}", "D"),
        (r"\boxed{[A]}", "A"),
        (r"\boxed{No} wait, \boxed{Yes}", "Yes"),
    ],
)
def test_label_variants_match(response: str, gold: str) -> None:
    assert verify_label(response, gold) == Verdict(1.0, extract_final_answer(response), "label-match")


@pytest.mark.parametrize(
    ("response", "gold", "reason"),
    [
        (r"\boxed{No}", "Yes", "mismatch"),
        (r"\boxed{Yes, it is}", "Yes", "mismatch"),
        (r"\boxed{B}", "A", "mismatch"),
        (r"\boxed{AB}", "A", "mismatch"),
        (r"\boxed{A and B}", "A", "mismatch"),
        ("Yes", "Yes", "no-answer"),
        (r"\boxed{" + "Y" * 500 + "}", "Yes", "answer-too-long"),
    ],
)
def test_label_mismatches(response: str, gold: str, reason: str) -> None:
    assert verify_label(response, gold).reason == reason


def test_normalize_label() -> None:
    assert [normalize_label(s) for s in ["(A)", r"\text{Yes}", "**yes**.", "Option B", "C) 12", " { d } "]] == [
        "a",
        "yes",
        "yes",
        "b",
        "c",
        "d",
    ]


# --- batches ----------------------------------------------------------------------------


def test_verify_many_equals_one_by_one_on_a_mixed_batch(started_workers: None) -> None:
    math_cases = [
        (r"\boxed{18}", "A: 18"),
        (r"\boxed{\frac{\sqrt{2}}{2}}", r"\frac{1}{\sqrt{2}}"),
        (r"\boxed{x^2+1}", "(x-1)(x+1)"),
        ("no final answer", "3"),
        (r"\boxed{\frac{6}{4}}", "1.5"),
        ("#### 7", "8"),
        (r"\boxed{50\%}", "0.5"),
    ] * 3 + [HOSTILE["power tower"][:2]]
    responses, golds = zip(*math_cases, strict=True)
    batched = verify_many(list(responses), list(golds), workers=2, timeout_s=BATCH_LIMIT_S)
    single = [verify_math(r, g, timeout_s=BATCH_LIMIT_S) for r, g in math_cases]
    assert batched == single
    assert {v.reason for v in batched} >= {"string-match", "math-verify", "mismatch", "no-answer", "timeout"}

    label_cases = [(r"\boxed{(A)}", "A"), (r"\boxed{No}", "Yes"), ("no verdict", "No")]
    labels = verify_many([r for r, _ in label_cases], [g for _, g in label_cases], kind="label")
    assert labels == [verify_label(r, g) for r, g in label_cases]


def test_math_verify_items_of_a_batch_spread_over_the_workers(
    started_workers: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Symbolic answers the fast path cannot decide: every one goes to a math-verify worker.
    responses = [rf"so \boxed{{\sqrt{{{a}}} + \frac{{{a}}}{{7}}}}" for a in range(2, 14)]
    golds = [rf"{a}/7 + \sqrt{{{a}}}" for a in range(2, 14)]
    served_by: list[int] = []
    send = verification_workers._Worker.send

    def recording_send(worker: verification_workers._Worker, *args: object) -> bool:
        served_by.append(worker.proc.pid)
        return send(worker, *args)

    monkeypatch.setattr(verification_workers._Worker, "send", recording_send)
    verdicts = verify_many(responses, golds, workers=2, timeout_s=BATCH_LIMIT_S)
    assert [v.reason for v in verdicts] == ["math-verify"] * len(responses)
    assert len(served_by) == len(responses)
    assert len(set(served_by)) == 2, f"the 12 comparisons ran on workers {served_by}"


def test_default_workers_follow_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verification.os, "cpu_count", lambda: 4)
    assert VerifierConfig().worker_count == 4
    monkeypatch.setattr(verification.os, "cpu_count", lambda: 64)
    assert VerifierConfig().worker_count == 8


def test_verify_many_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="2 responses but 1 golds"):
        verify_many(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="kind"):
        verify_many(["a"], ["a"], kind="code")  # type: ignore[arg-type]
    assert verify_many([], []) == []


def test_default_fallbacks_cover_all_conventions() -> None:
    assert set(DEFAULT_FALLBACKS) == set(verification.FALLBACK_PATTERNS)


# --- real data --------------------------------------------------------------------------


def test_agreement_with_gsm8k_solution_labels(gsm8k_solutions: Path) -> None:
    path = gsm8k_solutions
    responses, golds, labels = [], [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        for key in ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"):
            responses.append(row[key]["solution"])
            golds.append(row["ground_truth"])
            labels.append(row[key]["is_correct"])
    verdicts = verify_many(responses, golds)
    agreement = sum(v.correct == label for v, label in zip(verdicts, labels, strict=True)) / len(labels)
    assert len(labels) == 5276
    assert agreement >= 0.995
