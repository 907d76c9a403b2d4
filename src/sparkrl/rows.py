"""The one row format shared by datasets, recycled items, rewards and evaluation.

A dataset row and a recycled judge or reflection item are both an `Example`: the text the
model is asked (without any answer-format suffix), the ground truth the verifier compares
against (a label such as `Yes` or `A` for judge items), the images the question refers to,
the task name that routes the row to its verifier, and provenance. An unlabeled dataset row
(task `open`) has no ground truth: its answer is empty and its reward is self-judged
(sparkrl.self_reward).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TASK_POLICY = "policy"
TASK_POINTWISE = "pointwise"
TASK_PAIRWISE = "pairwise"
TASK_REFLECTION = "reflection"
TASK_OPEN = "open"  # a dataset prompt without an answer, rewarded by the model's own judgement
RECYCLED_TASKS = (TASK_POINTWISE, TASK_PAIRWISE, TASK_REFLECTION)


@dataclass(frozen=True)
class Example:
    """One verifiable prompt.

    question: the full user text, without the answer-format suffix that training adds to
        policy prompts (recycled items carry their own instructions).
    answer: the ground truth; for judge items the label (`Yes`/`No`, `A`/`B`); empty for
        `open` rows, which have none.
    images: image file paths, in the order the question refers to them.
    task: routes the row to its verifier (`policy`, `pointwise`, `pairwise`, `reflection`,
        or a user task registered with the reward router), or `open` for self-judged rewards.
    system: optional system message.
    source: provenance, JSON-serialisable (dataset file and row, or the recycled group and
        rollouts an item was built from).
    """

    question: str
    answer: str
    images: tuple[str, ...] = ()
    task: str = TASK_POLICY
    system: str | None = None
    source: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A flat, JSON-serialisable record (the JSONL form of an example)."""
        return {
            "question": self.question,
            "answer": self.answer,
            "images": list(self.images),
            "task": self.task,
            "system": self.system,
            "source": dict(self.source),
        }

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Example:
        """Inverse of `to_dict` (used for JSONL files of recycled items and checkpoints)."""
        return cls(
            question=str(record["question"]),
            answer=str(record["answer"]),
            images=tuple(record.get("images") or ()),
            task=str(record.get("task") or TASK_POLICY),
            system=record.get("system"),
            source=dict(record.get("source") or {}),
        )


def source_json(example: Example) -> str:
    """Provenance as a compact JSON string, for table columns that must hold plain strings."""
    return json.dumps(dict(example.source), sort_keys=True, separators=(",", ":"))
