"""One reward entry point for every row, routed by its task to a verifier.

Policy rows and reflection rows are scored by mathematical equivalence with the ground truth;
pointwise and pairwise judge rows by comparing the boxed verdict with their label. Users add
verifiers for their own tasks by name (`register` or `rewards.verifiers` in the configuration,
as `module:function` import paths), without editing the package.

The router is a plain TRL reward function `(prompts, completions, **columns) -> list[float]`.
It also reports per-task metrics through TRL's `log_metric` hook, one value per row, so that
TRL's cross-process averaging yields exact global means, and it keeps the verdicts of the last
call so the trainer can recycle the rollouts without verifying them twice.

Rows of task `open` (dataset prompts without an answer) have nothing to verify: the router
hands them, with the round's verified rows, to one self-judging hook (`self_judge`; the
trainer's `sparkrl.live_judge.SelfRewardHook`), which scores the whole call at once, since
pairwise and majority rewards compare the rollouts of a group and judging is batched.

Extra reward functions (`rewards.extra`: a format reward, a length penalty) are further TRL
reward functions beside the router, each wrapped in an `ExtraReward` that limits it to some
tasks. TRL adds their weighted values to the router's reward for the advantage; the recycling
reads only the router's verdicts, so judge labels always come from correctness.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sparkrl.rows import TASK_OPEN, TASK_PAIRWISE, TASK_POINTWISE, TASK_POLICY, TASK_REFLECTION
from sparkrl.verification import Verdict, verify_label, verify_math

# A verifier scores one completion against the row's ground truth; `row` holds all columns.
Verifier = Callable[[str, str, Mapping[str, Any]], Verdict | float]
# A TRL reward function: `(prompts, completions, **columns)`, one value (None: not scored) per row.
RewardFunction = Callable[..., Sequence[float | None]]

# The router's name in TRL's logs (`rewards/spark_reward/mean`).
ROUTER_NAME = "spark_reward"

# Metric names per task, as they appear in the training logs.
METRIC_NAMES = {
    TASK_POLICY: "spark/policy_reward",
    TASK_POINTWISE: "spark/pointwise_accuracy",
    TASK_PAIRWISE: "spark/pairwise_accuracy",
    TASK_REFLECTION: "spark/reflection_success",
    TASK_OPEN: "spark/open_reward",  # the reward unlabeled rows got (0 while the min_agreement gate is shut)
}


def _math_verifier(timeout_s: float) -> Verifier:
    def verify(completion: str, answer: str, row: Mapping[str, Any]) -> Verdict:
        return verify_math(completion, answer, timeout_s=timeout_s)

    return verify


def _label_verifier(completion: str, answer: str, row: Mapping[str, Any]) -> Verdict:
    return verify_label(completion, answer)


def import_function(path: str, kind: str = "verifier") -> Callable[..., Any]:
    """Load a user function (a verifier, an extra reward function) from `package.module:function`."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"{kind} {path!r} must be given as 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"{kind} {path!r}: cannot import module {module_name!r} ({exc})") from exc
    try:
        function = getattr(module, attr)
    except AttributeError as exc:
        raise ValueError(f"{kind} {path!r}: module {module_name!r} has no {attr!r}") from exc
    if not callable(function):
        raise ValueError(f"{kind} {path!r} is not callable")
    return function


@dataclass(frozen=True)
class SelfJudgedScore:
    """The reward of an unlabeled (`open`) rollout: a score in [0, 1] from the model's own
    judgement, which is no verdict of correctness (a `Verdict` is 0 or 1)."""

    score: float
    extracted: str | None  # the rollout's final answer, if any
    reason: str  # "self-judged-<mode>", "no-answer", or "self-reward-inactive" (gate shut: 0)

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"a self-judged score must be in [0, 1], got {self.score!r}")


@dataclass(frozen=True)
class ScoredRow:
    """What the router saw and decided for one completion (a self-judged score for `open` rows)."""

    task: str
    completion: str
    verdict: Verdict | SelfJudgedScore


@dataclass(frozen=True)
class RouterCall:
    """What the self-judging hook sees of one router call: every row, in TRL's order.

    examples: each row's `example` column (the JSON of its `Example`: question, images, and,
        by equality, which rows form a group); verdicts: the verifiers' verdicts, None for
        `open` rows; completion_tokens: tokens of each completion (TRL's `completion_ids`).
    """

    tasks: tuple[str, ...]
    completions: tuple[str, ...]
    examples: tuple[str, ...]
    verdicts: tuple[Verdict | None, ...]
    completion_tokens: tuple[int, ...]


# Scores the `open` rows of a call: one score per open row, in order.
SelfJudging = Callable[[RouterCall], Sequence[SelfJudgedScore]]


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a plain string, or a list of chat messages."""
    if isinstance(completion, str):
        return completion
    parts = []
    for message in completion:
        content = message.get("content", "")
        if isinstance(content, str):
            parts.append(content)
        else:
            parts.extend(block.get("text", "") for block in content if block.get("type") == "text")
    return "".join(parts)


class RewardRouter:
    """Routes each row to the verifier of its task; a TRL reward function."""

    __name__ = ROUTER_NAME

    def __init__(
        self,
        timeout_s: float = 5.0,
        extra: Mapping[str, Verifier | str] | None = None,
    ) -> None:
        math_verifier = _math_verifier(timeout_s)
        self.verifiers: dict[str, Verifier] = {
            TASK_POLICY: math_verifier,
            TASK_REFLECTION: math_verifier,
            TASK_POINTWISE: _label_verifier,
            TASK_PAIRWISE: _label_verifier,
        }
        for task, verifier in (extra or {}).items():
            self.register(task, verifier)
        self.last_rows: list[ScoredRow] = []
        self.self_judge: SelfJudging | None = None

    def register(self, task: str, verifier: Verifier | str) -> None:
        """Add or replace the verifier for `task` (a callable or a 'module:function' path)."""
        self.verifiers[task] = import_function(verifier) if isinstance(verifier, str) else verifier

    def score(self, task: str, completion: str, answer: str, row: Mapping[str, Any]) -> Verdict:
        try:
            verifier = self.verifiers[task]
        except KeyError:
            known = ", ".join(sorted(self.verifiers))
            raise ValueError(f"no verifier for task {task!r}; known tasks: {known}") from None
        result = verifier(completion, answer, row)
        if isinstance(result, Verdict):
            return result
        score = float(result)
        return Verdict(score=score, extracted=None, reason="custom")

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        *,
        answer: Sequence[str],
        task: Sequence[str] | None = None,
        log_metric: Callable[[str, float], None] | None = None,
        **columns: Any,
    ) -> list[float]:
        tasks = list(task) if task is not None else [TASK_POLICY] * len(completions)
        texts = [completion_text(completion) for completion in completions]
        verdicts: list[Verdict | SelfJudgedScore | None] = []
        for i, (text, gold, name) in enumerate(zip(texts, answer, tasks, strict=True)):
            row = {key: values[i] for key, values in columns.items() if isinstance(values, list)}
            verdicts.append(None if name == TASK_OPEN else self.score(name, text, gold, row))
        if self.self_judge is not None:
            token_ids = columns.get("completion_ids") or [()] * len(texts)
            call = RouterCall(tuple(tasks), tuple(texts), tuple(columns.get("example") or [""] * len(texts)),
                              tuple(verdicts), tuple(len(ids) for ids in token_ids))
            judged = list(self.self_judge(call))
            if len(judged) != verdicts.count(None):
                raise RuntimeError(f"the self-judging hook scored {len(judged)} of {verdicts.count(None)} open rows")
            filled = iter(judged)
            verdicts = [next(filled) if v is None else v for v in verdicts]
        elif TASK_OPEN in tasks:
            raise ValueError(f"rows of task {TASK_OPEN!r} (no answer) need a self-judged reward: set spark.self_reward")
        rows = [ScoredRow(name, text, v) for name, text, v in zip(tasks, texts, verdicts, strict=True) if v is not None]
        self.last_rows = rows
        if log_metric is not None:
            self._log_row_metrics(rows, answer, log_metric)
        return [scored.verdict.score for scored in rows]

    def _log_row_metrics(
        self, rows: Sequence[ScoredRow], answers: Sequence[str], log_metric: Callable[[str, float], None]
    ) -> None:
        # One value per row and metric: TRL sums values and counts over all processes, so each
        # logged number is an exact mean over the global batch. Shares are logged for every
        # known task on every row, so their denominators are the whole batch.
        for scored, gold in zip(rows, answers, strict=True):
            log_metric(METRIC_NAMES.get(scored.task, f"spark/{scored.task}_reward"), scored.verdict.score)
            for name in [*self.verifiers, *([TASK_OPEN] if self.self_judge is not None else [])]:
                log_metric(f"spark/share_{name}", float(scored.task == name))
            if scored.task == TASK_POINTWISE:
                log_metric("spark/pointwise_label_positive", float(gold.strip() in ("Yes", "A")))
            elif scored.task == TASK_PAIRWISE:
                log_metric("spark/pairwise_label_a", float(gold.strip() == "A"))


class ExtraReward:
    """A user reward function limited to rows of some tasks; a TRL reward function.

    The function sees the whole batch, so values it passes to TRL's per-row hooks (`log_extra`,
    `log_metric`) stay aligned with TRL's rows; its values for rows of other tasks become None,
    which TRL reads as "not scored": they add nothing to those rows' rewards and are left out
    of `rewards/<name>/mean`.
    """

    def __init__(self, function: RewardFunction, tasks: Collection[str] | None, name: str) -> None:
        self.function = function
        self.tasks = None if tasks is None else frozenset(tasks)
        self.__name__ = name  # TRL names the function's metrics after it

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[float | None]:
        values = list(self.function(prompts, completions, **columns))
        if len(values) != len(completions):
            raise ValueError(
                f"reward function {self.__name__!r} returned {len(values)} values for {len(completions)} completions"
            )
        if self.tasks is None:
            return values
        tasks = columns.get("task") or [TASK_POLICY] * len(completions)
        return [value if name in self.tasks else None for value, name in zip(values, tasks, strict=True)]


def extra_rewards(specs: Sequence[tuple[str, Collection[str] | None]]) -> list[ExtraReward]:
    """`(package.module:function, tasks or None for all)` pairs as TRL reward functions, each
    named after its function; a repeated name gets `_2`, `_3`, ... so that each function has
    its own `rewards/<name>/mean` in the logs."""
    taken = {ROUTER_NAME}
    wrapped = []
    for path, tasks in specs:
        function = import_function(path, kind="reward function")
        base = getattr(function, "__name__", type(function).__name__)
        name, count = base, 1
        while name in taken:
            count += 1
            name = f"{base}_{count}"
        taken.add(name)
        wrapped.append(ExtraReward(function, tasks, name))
    return wrapped
