"""Does a warm start teach the marks of a `checks` judge reply? (digit note, run 7)

Trains the micro tiny model on the `digit` task's warm-start data (`experiments/digit_demo.py`'s
task, `checks` replies, tiny-fixed templates) with `--comparisons` drills in place of policy
pairs, then reads, teacher-forced on held-out judge replies, whether the model puts more
probability on the right mark (`+` when the candidate equals the judge's own answer) than on
the wrong one, per mark position (pairwise first and second, pointwise). With `--drills-only`
it trains on drills alone (`Compare 4 and 5` -> `4~5-`) and scores all 100 digit pairs.

    python experiments/probe_marks.py --steps 2000 --comparisons 9600 [--save DIR]
"""

from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict

import torch

from sparkrl.templates import resolve_templates
from sparkrl.tiny.model import build_tiny_model
from sparkrl.tiny.task import TaskConfig
from sparkrl.tiny.tokenizer import build_tokenizer
from sparkrl.tiny.warmstart import (
    WarmStartConfig,
    WarmStartData,
    build_pairs,
    collate,
    comparison_pair,
    encode_pair,
    fit,
)

TASK = TaskConfig(digits=3, asked="top", explicit_carries=True, direct_answers=True, judge_slip=0.1)


def mark_accuracy(model, tokenizer, pairs) -> dict[str, float]:
    """Teacher-forced: the share of marks where the right one outscores the other, by position."""
    plus, minus, tilde = tokenizer.convert_tokens_to_ids(["+", "-", "~"])
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for pair in pairs:
        ids, start = encode_pair(tokenizer, pair)
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]
        position = 0
        for i in range(start, len(ids)):
            if ids[i] in (plus, minus) and ids[i - 2] == tilde:  # a mark, not an addition's `+`
                right = (logits[i - 1, plus] > logits[i - 1, minus]).item() == (ids[i] == plus)
                key = f"{pair.task} mark {position + 1}"
                counts[key][0] += int(right)
                counts[key][1] += 1
                position += 1
    return {key: round(good / total, 3) for key, (good, total) in sorted(counts.items())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--comparisons", type=int, default=0)
    parser.add_argument("--drills-only", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", default=None)
    args = parser.parse_args()
    torch.set_num_threads(2)
    tokenizer = build_tokenizer()
    model = build_tiny_model(tokenizer, args.seed, "micro")
    n = args.steps * 32
    if args.drills_only:
        rng = random.Random(args.seed)
        pairs = [comparison_pair(rng, "checks") for _ in range(n)]
    else:
        data = WarmStartData(policy=n // 4 - args.comparisons, pointwise=n * 5 // 16, pairwise=n * 5 // 16,
                             reflection=n // 8, comparisons=args.comparisons)
        pairs = build_pairs(TASK, data, args.seed, judge_style="checks", templates=resolve_templates("tiny-fixed"))
    encoded = [encode_pair(tokenizer, pair) for pair in pairs]
    fit(model, encoded, [len(ids) for ids, _ in encoded], lambda rows: collate(rows, tokenizer.pad_token_id),
        WarmStartConfig(steps=args.steps, log_every=200), args.seed)
    if args.save:
        model.save_pretrained(args.save)
        tokenizer.save_pretrained(args.save)
    if args.drills_only:
        from sparkrl.tiny.warmstart import SupervisedPair

        held = [SupervisedPair(f"Compare {a} and {b}", f"{a}~{b}{'+' if a == b else '-'}", "comparison", "", "")
                for a in range(10) for b in range(10)]
    else:
        held = [p for p in build_pairs(TASK, WarmStartData(policy=1, pointwise=200, pairwise=200, reflection=0),
                                       args.seed + 12345, judge_style="checks",
                                       templates=resolve_templates("tiny-fixed"))
                if p.task in ("pointwise", "pairwise")]
    print(json.dumps(mark_accuracy(model, tokenizer, held)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
