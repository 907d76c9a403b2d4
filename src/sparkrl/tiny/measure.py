"""Measurements of a tiny model on held-out problems, and the script that produced docs/tiny.md.

Policy accuracy (greedy), the spread of correctness within groups of sampled answers (what
GRPO and pairwise recycling feed on), and judge accuracy on balanced held-out judge rows.
Answers are compared as exact strings: every tiny answer is a plain integer.

    python -m sparkrl.tiny.measure --out runs/tiny-warmstart
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from sparkrl.rows import TASK_PAIRWISE, TASK_POINTWISE, Example
from sparkrl.tiny.model import SIZES, build_tiny_model, parameter_count
from sparkrl.tiny.task import TaskConfig, generate_examples, judge_examples
from sparkrl.tiny.templates import TINY_TEMPLATES
from sparkrl.tiny.tokenizer import build_tokenizer
from sparkrl.tiny.warmstart import WarmStartConfig, WarmStartData, build_pairs, warm_start
from sparkrl.verification import last_boxed


@torch.no_grad()
def complete(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    *,
    samples: int = 1,
    temperature: float | None = None,
    max_new_tokens: int = 64,
    batch_size: int = 256,
) -> list[list[str]]:
    """`samples` replies per user prompt; greedy when `temperature` is None."""
    sampling = {"do_sample": False} if temperature is None else {"do_sample": True, "temperature": temperature, "top_k": 0}
    expanded = [p for p in prompts for _ in range(samples)]
    replies: list[str] = []
    for start in range(0, len(expanded), batch_size):
        chats = [[{"role": "user", "content": p}] for p in expanded[start : start + batch_size]]
        encoded = tokenizer.apply_chat_template(chats, add_generation_prompt=True, padding=True, return_tensors="pt", return_dict=True)
        output = model.generate(**encoded, max_new_tokens=max_new_tokens, **sampling)
        replies += tokenizer.batch_decode(output[:, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
    return [replies[i : i + samples] for i in range(0, len(replies), samples)]


def is_correct(reply: str, answer: str) -> bool:
    return (last_boxed(reply) or "").strip() == answer


@dataclass(frozen=True)
class GroupSpread:
    """Correctness inside groups of sampled replies to the same question."""

    accuracy: float
    all_correct: float
    all_wrong: float
    mixed: float


def group_spread(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, rows: Sequence[Example], group: int, temperature: float, max_new_tokens: int = 64
) -> GroupSpread:
    replies = complete(model, tokenizer, [r.question for r in rows], samples=group, temperature=temperature, max_new_tokens=max_new_tokens)
    scores = [[is_correct(reply, row.answer) for reply in group_replies] for row, group_replies in zip(rows, replies)]
    n = len(scores)
    return GroupSpread(
        accuracy=sum(map(sum, scores)) / (n * group),
        all_correct=sum(all(s) for s in scores) / n,
        all_wrong=sum(not any(s) for s in scores) / n,
        mixed=sum(any(s) and not all(s) for s in scores) / n,
    )


def greedy_accuracy(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, rows: Sequence[Example], max_new_tokens: int = 64) -> float:
    replies = complete(model, tokenizer, [r.question for r in rows], max_new_tokens=max_new_tokens)
    return sum(is_correct(reply[0], row.answer) for reply, row in zip(replies, rows)) / len(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sparkrl.tiny.measure", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="micro", choices=sorted(SIZES))
    parser.add_argument("--digits", type=int, default=TaskConfig.digits)
    parser.add_argument("--carry-slip", type=float, default=TaskConfig.carry_slip)
    parser.add_argument("--steps", type=int, default=WarmStartConfig.steps)
    parser.add_argument("--lr", type=float, default=WarmStartConfig.learning_rate)
    parser.add_argument("--eval", type=int, default=200, help="held-out problems per measurement")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="save the warm-started model, tokenizer and report here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    task = TaskConfig(digits=args.digits, carry_slip=args.carry_slip)
    tokenizer = build_tokenizer()
    model = build_tiny_model(tokenizer, args.seed, args.size)
    started = time.perf_counter()
    pairs = build_pairs(task, WarmStartData(), args.seed)
    report = warm_start(model, tokenizer, pairs, WarmStartConfig(steps=args.steps, learning_rate=args.lr), args.seed)
    total_s = time.perf_counter() - started

    policy = generate_examples(task, "test", args.eval, args.seed)
    results = {
        "size": args.size,
        "parameters": parameter_count(model),
        "task": asdict(task),
        "warm_start": asdict(report),
        "warm_start_with_data_s": total_s,
        "greedy_accuracy": greedy_accuracy(model, tokenizer, policy),
        "groups_of_8_t1": asdict(group_spread(model, tokenizer, policy[:100], 8, 1.0)),
    }
    for kind in (TASK_POINTWISE, TASK_PAIRWISE):
        rows = judge_examples(task, "test", args.eval, args.seed, kind, TINY_TEMPLATES)
        results[f"{kind}_judge_accuracy"] = greedy_accuracy(model, tokenizer, rows)
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(args.out)
        tokenizer.save_pretrained(args.out)
        (args.out / "measure.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
