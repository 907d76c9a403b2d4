"""math-verify in worker subprocesses, under a wall-clock limit that holds in any thread.

math-verify bounds its own run time with `signal.alarm`, which only works in the main thread,
and a C-level computation (`9^{9^9}`) ignores signals anyway. So `sparkrl.verification` sends
every comparison it cannot decide itself to a persistent worker subprocess, over a line-based
JSON protocol, and kills the worker when the comparison's deadline passes.

Every comparison ends within its limit once its clock starts, the one right after a timeout
included: the pool keeps a started spare worker, and a killed worker is restarted in the
background rather than inside the next call. A comparison that waits for a restarting worker
is charged that wait, and scores "busy" if the worker does not start in time; waiting behind
busy started workers is not charged. The one wait that is not charged is a worker's first
start: a worker started because a caller found the pool empty (for that caller, or as the
spare started beside it), until it has started. That happens at the first call of a process
and when concurrent callers ask for more workers than the pool holds; failing those
comparisons would only punish correct answers for the process being young.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

# The worker imports sympy and warms math-verify's caches once; on a loaded 2-core machine
# that can take several seconds. Only a worker that fails to start within this is given up.
WORKER_STARTUP_S = 120.0


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
    """One math-verify subprocess and its line protocol; at most one request in flight.

    `charged`: whether waiting for this worker to start counts against a comparison's limit.
    Not for a worker started because its caller found the pool empty (its first start); yes
    for one started to replace a worker killed by a timeout, and for any worker handed out to
    replace one lost mid-call, so that a slow start can never stretch a comparison beyond its
    limit. `command`: the worker's command line; tests pass a scripted stand-in.
    """

    def __init__(self, *, charged: bool, command: Sequence[str] | None = None) -> None:
        package_root = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            command or [sys.executable, "-c", "from sparkrl.verification_workers import _serve; _serve()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self.charged = charged
        self.ready = False
        self.deadline = time.monotonic() + WORKER_STARTUP_S  # of the start, then of the request
        self.task: int | None = None
        self._buffer = b""

    def fileno(self) -> int:
        assert self.proc.stdout is not None
        return self.proc.stdout.fileno()

    def handshake(self, line: str) -> bool:
        """Take the first protocol line; False if it is not the "ready" announcement."""
        self.ready = line == "ready"
        return self.ready

    def check_ready(self) -> bool:
        """Whether the worker has started, without waiting for it."""
        if not self.ready and self.proc.poll() is None and select.select([self], [], [], 0)[0]:
            line = self.read_line()
            if line is not None and not self.handshake(line):
                self.proc.kill()  # a worker that cannot start is discarded as dead
        return self.ready

    def send(self, task: int, gold: str, pred: str, deadline: float) -> bool:
        """Submit one comparison that must be answered by `deadline`; False if the worker is gone."""
        assert self.proc.stdin is not None
        timeout_s = max(deadline - time.monotonic(), 0.001)
        line = json.dumps({"gold": gold, "pred": pred, "timeout_s": timeout_s}) + "\n"
        try:
            self.proc.stdin.write(line.encode("utf-8"))
            self.proc.stdin.flush()
        except OSError:  # a broken pipe: the worker died while idle
            return False
        self.task, self.deadline = task, deadline
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
    """Started workers kept between calls, because starting one (sympy import) takes seconds.

    This is the module's one piece of process-wide state: a cache of subprocesses, not of
    results. Each caller takes workers exclusively, so threads never share a pipe. The pool
    keeps a spare beyond what callers hold, and a worker killed by a timeout is restarted at
    once in the background: the next comparison gets the started spare instead of waiting
    for a start inside its own time limit.
    """

    def __init__(self) -> None:
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()

    def acquire(self, count: int) -> list[_Worker]:
        """`count` workers for one caller, started ones first; new (uncharged) ones if too few.

        A spare created here, because the caller emptied the pool, is uncharged too: it starts
        beside the caller's own new workers, and a caller that takes it before it has started
        waits for a first start like theirs.
        """
        with self._lock:
            taken = self._take(count)
            if not self._idle:
                self._idle.append(_Worker(charged=False))  # the spare
        return taken + [_Worker(charged=False) for _ in range(count - len(taken))]

    def stand_in(self) -> _Worker:
        """A worker to take the place of one lost mid-call: an idle one, started ones first.

        Waiting for it is charged even if it is an uncharged spare still starting: it replaces
        a worker of a call that is already under way, not a first start.
        """
        with self._lock:
            taken = self._take(1)
        worker = taken[0] if taken else _Worker(charged=True)
        worker.charged = True
        return worker

    def restart(self) -> None:
        """Start a worker in place of a killed one; it waits in the pool for the next caller."""
        worker = _Worker(charged=True)
        with self._lock:
            self._idle.append(worker)

    def _take(self, count: int) -> list[_Worker]:
        for worker in [w for w in self._idle if w.proc.poll() is not None]:
            self._idle.remove(worker)
            worker.kill()
        self._idle.sort(key=lambda w: not w.check_ready())
        taken, self._idle = self._idle[:count], self._idle[count:]
        return taken

    def release(self, workers: Sequence[_Worker], keep: int) -> None:
        # A worker with a request still in flight (the caller was interrupted) would answer
        # the next caller's request with a stale reply: never reuse it.
        alive = [w for w in workers if w.proc.poll() is None and w.task is None]
        alive.sort(key=lambda w: not w.check_ready())
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


class _Dispatch:
    """One call's (gold, pred) comparisons, run on the caller's workers.

    Outcomes: "equal", "different", "timeout" (it ran past its limit), "busy" (it never ran:
    the restart it waited for took longer than its limit), "error" (the worker crashed or never
    started). A comparison's clock starts when a worker is free for it: a started one, or a
    restarting (charged) one that the comparison is then tied to. If a started worker frees up
    before that restart completes, it takes the comparison with a fresh full limit: the wait
    was spent behind busy workers, which is not charged, and a comparison sent with what is
    left of its limit would time out and kill a healthy worker. A worker that times out is
    killed and restarted in the background; an idle worker from the pool takes its place. A
    worker that never started is dropped instead, so a broken installation ends with "error".
    """

    def __init__(
        self, workers: list[_Worker], pairs: Sequence[tuple[str, str]], timeout_s: float, pool: _WorkerPool
    ) -> None:
        self.workers = workers  # updated in place, so that the caller releases what is left
        self.pairs, self.timeout_s, self.pool = pairs, timeout_s, pool
        self.slots = len(workers)
        self.outcomes: list[str | None] = [None] * len(pairs)
        self.pending = deque(range(len(pairs)))
        # A comparison tied to each restarting worker, with the deadline its clock runs to.
        self.reserved: dict[_Worker, tuple[int, float]] = {}

    def run(self) -> list[str | None]:
        while self.slots and (self.pending or self.reserved or any(w.task is not None for w in self.workers)):
            while (self.pending or self.reserved) and len(self.workers) < self.slots:
                self.workers.append(self.pool.stand_in())
            self._hand_out()
            self._wait_and_read()
            self._expire()
        for task in self.pending:
            self.outcomes[task] = "error"
        return self.outcomes

    def _hand_out(self) -> None:
        for worker in [w for w in self.workers if w.ready and w.task is None]:
            if worker in self.reserved:  # the restart it waited for: its clock keeps running
                task, deadline = self.reserved.pop(worker)
            elif self.reserved:  # a started worker came first: a fresh limit, the oldest first
                oldest = min(self.reserved, key=lambda w: self.reserved[w][1])
                task, deadline = self.reserved.pop(oldest)[0], time.monotonic() + self.timeout_s
            elif self.pending:
                task, deadline = self.pending.popleft(), time.monotonic() + self.timeout_s
            else:
                break
            if not worker.send(task, *self.pairs[task], deadline):
                # The worker died while idle, which is not this comparison's fault: it goes
                # back to the front of the queue, for another worker.
                self.pending.appendleft(task)
                self._retire(worker, "error")
        for worker in self.workers:
            if self.pending and worker.charged and not worker.ready and worker not in self.reserved:
                self.reserved[worker] = (self.pending.popleft(), time.monotonic() + self.timeout_s)

    def _wait_and_read(self) -> None:
        watched = [w for w in self.workers if w.task is not None or not w.ready]
        if not watched:
            return
        deadline = min([w.deadline for w in watched] + [d for _, d in self.reserved.values()])
        readable, _, _ = select.select(watched, [], [], max(0.0, deadline - time.monotonic()))
        for worker in readable:
            line = worker.read_line()
            if line == "" or (line is not None and not self._on_line(worker, line)):
                self._retire(worker, "error")

    def _on_line(self, worker: _Worker, line: str) -> bool:
        """Record one protocol line; False if the worker spoke out of turn."""
        if not worker.ready:
            return worker.handshake(line)
        if worker.task is None:
            return False
        reply = json.loads(line)
        self.outcomes[worker.task] = "error" if "error" in reply else ("equal" if reply["equal"] else "different")
        worker.task = None
        return True

    def _expire(self) -> None:
        now = time.monotonic()
        for worker in [w for w in self.workers if (w.task is not None or not w.ready) and w.deadline <= now]:
            self._retire(worker, "timeout" if worker.ready else "error")
        for worker, (task, deadline) in list(self.reserved.items()):
            if deadline <= now:
                del self.reserved[worker]
                self.outcomes[task] = "busy"

    def _retire(self, worker: _Worker, outcome: str) -> None:
        """Kill a timed-out or dead worker and record its comparison's outcome."""
        worker.kill()
        if worker.task is not None:
            self.outcomes[worker.task] = outcome
        if worker in self.reserved:  # it never started: the comparison tied to it never ran
            self.pending.appendleft(self.reserved.pop(worker)[0])
        self.workers.remove(worker)
        if worker.ready:
            self.pool.restart()
        else:
            self.slots -= 1


def math_verify_outcomes(
    pairs: Sequence[tuple[str, str]], timeout_s: float, workers: int, keep: int
) -> list[str | None]:
    """The outcome of each (gold, pred) comparison: "equal", "different", "timeout", "busy" or "error".

    The comparisons share `workers` subprocesses, each under its own `timeout_s`; afterwards
    up to `keep` idle workers (the spare included) stay started for later calls.
    """
    if not pairs:
        return []
    taken = _POOL.acquire(min(workers, len(pairs)))
    try:
        return _Dispatch(taken, pairs, timeout_s, _POOL).run()
    finally:
        _POOL.release(taken, keep=keep)
