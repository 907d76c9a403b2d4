"""Ready-made extra reward functions for `rewards.extra` (reward shaping beside the verifiers).

Each is a plain TRL reward function `(prompts, completions, **columns) -> list[float]`, named
in the configuration as `sparkrl.shaping:<name>` with a weight and the tasks it applies to.
TRL adds the weighted values to the verifiers' 0/1 reward; the recycling never sees them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sparkrl.rewards import completion_text
from sparkrl.verification import extract_final_answer

# length_penalty's unit: each this many completion tokens cost 1 (times the entry's weight).
TOKENS_PER_UNIT = 1000


def boxed_format(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[float]:
    """1.0 when the completion states a final answer in `\\boxed{}` as the verifier reads it
    (the last complete, non-empty box; the textual fallbacks such as `####` do not count)."""
    return [float(extract_final_answer(completion_text(c), fallbacks=()) is not None) for c in completions]


def length_penalty(
    prompts: Sequence[Any], completions: Sequence[Any], completion_ids: Sequence[Sequence[int]], **columns: Any
) -> list[float]:
    """Minus the completion's length in thousands of tokens (-0.25 for 250 tokens), so that
    with weight w every 1,000 tokens cost w. A fixed price, not a share of the longest
    completion in the batch, keeps the penalty of a completion independent of its neighbours."""
    return [-len(ids) / TOKENS_PER_UNIT for ids in completion_ids]
