"""What a demo's judges wrote before their verdicts, checkpoint by checkpoint.

A diagnostic for demo folders of the one-bit format with `marks` judge replies
(`sparkrl demo --format one-bit`, or `experiments/demo_text_format.py --asked tens-parity
--judge-style marks`). It reads the held-out pairwise evaluations the demo saved
(`DIR/eval/<model>/pairwise/single.jsonl` and `DIR/eval/curves/<run>/step-N/...`) and counts,
over every reply (each item is asked in both orders):

- `right`: the verdict is the correct letter (the demo's pairwise accuracy);
- `own`: the judge's own worked answer is right;
- `copied`: both candidates are copied as shown;
- `marks`: both marks agree with the judge's own answer (`+` the same, `-` not);
- `follows`: the verdict is the candidate marked `+`, among the replies that mark exactly one.

A reply that does not have the expected shape counts as wrong for `own`, `copied` and `marks`.

A judge whose copies and marks stay right can learn to follow its marks; one whose copies drift
away under RL cannot (docs/demo.md).

    python experiments/judge_scaffolding.py runs/demo-seed0 [--runs spark grpo]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

REPLY = re.compile(r"\\boxed\{(\d)\} A: (\d)([+-]) B: (\d)([+-])\\boxed\{(\w+)\}")
ANSWER = re.compile(r"\\boxed\{(\d)\}")


def scaffolding(path: Path) -> dict[str, float]:
    """The shares above, over every reply in one pairwise evaluation file."""
    counts = dict.fromkeys(("right", "own", "copied", "marks", "follows"), 0)
    replies = one_marked = 0
    for line in path.read_text().splitlines():
        row = json.loads(line)
        item = row["item"]
        first, second = ANSWER.search(item["response_a"]).group(1), ANSWER.search(item["response_b"]).group(1)
        truth = first if item["label"] == "A" else second
        for probe in row["probes"]:
            replies += 1
            counts["right"] += bool(probe["correct"])
            shown = (first, second) if probe["gold"] == item["label"] else (second, first)
            found = REPLY.search(probe["final"])
            if not found:
                continue
            own, a, mark_a, b, mark_b, verdict = found.groups()
            counts["own"] += own == truth
            counts["copied"] += (a, b) == shown
            counts["marks"] += (mark_a == "+") == (a == own) and (mark_b == "+") == (b == own)
            if mark_a != mark_b:
                one_marked += 1
                counts["follows"] += verdict == ("A" if mark_a == "+" else "B")
    shares = {name: round(n / max(replies, 1), 3) for name, n in counts.items()}
    shares["follows"] = round(counts["follows"] / max(one_marked, 1), 3)
    return shares


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("demo", type=Path, help="a demo output folder")
    parser.add_argument("--runs", nargs="+", default=["spark", "grpo"])
    args = parser.parse_args()
    evals = args.demo / "eval"
    print("warmstart", json.dumps(scaffolding(evals / "warmstart" / "pairwise" / "single.jsonl")))
    for run in args.runs:
        steps = sorted((evals / "curves" / run).glob("step-*"), key=lambda p: int(p.name.removeprefix("step-")))
        for step in steps:
            print(f"{run} {step.name}", json.dumps(scaffolding(step / "pairwise" / "single.jsonl")))
        print(f"{run} final", json.dumps(scaffolding(evals / run / "pairwise" / "single.jsonl")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
