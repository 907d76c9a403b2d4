"""The embedded default: a synthetic addition task, a character tokenizer, a tiny Llama, a warm start.

Small enough that SPARK training runs on a laptop CPU in minutes. See docs/tiny.md.
"""

from sparkrl.tiny.model import SIZES, TinySize, build_tiny_model, parameter_count
from sparkrl.tiny.task import (
    Problem,
    TaskConfig,
    correct_solution,
    generate_examples,
    generate_problems,
    judge_examples,
    teacher_solution,
    wrong_answer,
)
from sparkrl.tiny.templates import TINY_TEMPLATES
from sparkrl.tiny.tokenizer import build_tokenizer
from sparkrl.tiny.warmstart import SupervisedPair, WarmStartConfig, WarmStartData, build_pairs, warm_start

__all__ = [
    "SIZES",
    "TINY_TEMPLATES",
    "Problem",
    "SupervisedPair",
    "TaskConfig",
    "TinySize",
    "WarmStartConfig",
    "WarmStartData",
    "build_pairs",
    "build_tiny_model",
    "build_tokenizer",
    "correct_solution",
    "generate_examples",
    "generate_problems",
    "judge_examples",
    "parameter_count",
    "teacher_solution",
    "warm_start",
    "wrong_answer",
]
