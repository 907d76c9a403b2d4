"""What the judges of a `digit`-format demo wrote before their verdicts.

The `digit` task's judge replies (`experiments/digit_demo.py`) work the question, box their
own answer, then write a comparison with the candidates (`marks`: `A: 5+ B: 4-`, `checks`:
`A: 5~5+ B: 4~5-`, `lookup`: `=A`) before the verdict. This reads a demo folder's held-out judge evaluations
(`DIR/eval/<model>/<kind>/single.jsonl`, and the checkpoints' under `DIR/eval/curves/`) and
counts, over every reply:

- `right`: the verdict is right (the demo's judge accuracy);
- `own`: the judge's own worked answer is right;
- `scaffold`: what the reply writes between its own answer and its verdict is what that own
  answer calls for (`--style`: `marks` and `checks` copy each candidate and mark it `+` when it
  is the same as the own answer, `-` if not; `lookup` names the candidate that is the same);
- `follows`: the verdict is what the marks say (pairwise: the letter of the one candidate
  marked `+`, among replies that mark exactly one; pointwise: `Yes` after `+`, `No` after `-`).

A reply without the expected shape counts as wrong for `own` and `checks`.

    python experiments/digit_scaffolding.py runs/digit-seed0 [--runs spark grpo] [--style lookup]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

BOXED = re.compile(r"\\boxed\{(\w+)\}")
# What each judge style writes after its own boxed answer (`sparkrl.tiny.warmstart`), as
# (pairwise, pointwise) patterns whose last group is the verdict.
STYLES = {
    "marks": (re.compile(r"\\boxed\{(\d)\} A: (\d)([+-]) B: (\d)([+-])\\boxed\{(\w+)\}"),
              re.compile(r"\\boxed\{(\d)\} (\d)([+-])\\boxed\{(\w+)\}")),
    "checks": (re.compile(r"\\boxed\{(\d)\} A: (\d)~\d([+-]) B: (\d)~\d([+-])\\boxed\{(\w+)\}"),
               re.compile(r"\\boxed\{(\d)\} (\d)~\d([+-])\\boxed\{(\w+)\}")),
    "lookup": (re.compile(r"\\boxed\{(\d)\} =([AB-])\\boxed\{(\w+)\}"),
               re.compile(r"\\boxed\{(\d)\} =([+-])\\boxed\{(\w+)\}")),
}
STYLES["follows"] = STYLES["checks"]  # the same reply; only its verdict is drawn differently


def _mark(candidate: str, own: str) -> str:
    return "+" if candidate == own else "-"


def scaffolding(path: Path, kind: str, style: str = "lookup") -> dict[str, float]:
    """The shares above over one evaluation file of `kind` ("pairwise" or "pointwise")."""
    pattern = STYLES[style][0 if kind == "pairwise" else 1]
    counts = dict.fromkeys(("right", "own", "scaffold", "follows"), 0)
    replies = judged = 0
    for line in path.read_text().splitlines():
        row = json.loads(line)
        item = row["item"]
        for probe in row["probes"]:
            replies += 1
            counts["right"] += bool(probe["correct"])
            match = pattern.search(probe["final"])
            if not match:
                continue
            own, *wrote, verdict = match.groups()
            if kind == "pairwise":
                first, second = BOXED.findall(item["response_a"])[-1], BOXED.findall(item["response_b"])[-1]
                truth = first if item["label"] == "A" else second
                a, b = (second, first) if probe.get("order") == "ba" else (first, second)
                counts["own"] += own == truth
                if style == "lookup":
                    expected = ["A" if a == own else "B" if b == own else "-"]
                    says = {"A": "A", "B": "B"}.get(wrote[0])
                else:
                    expected = [a, _mark(a, own), b, _mark(b, own)]
                    says = ("A" if wrote[1] == "+" else "B") if (wrote[1], wrote[3]).count("+") == 1 else None
            else:
                candidate = BOXED.findall(item["response"])[-1]
                expected = [_mark(candidate, own)] if style == "lookup" else [candidate, _mark(candidate, own)]
                says = "Yes" if wrote[-1] == "+" else "No"
            counts["scaffold"] += wrote == expected
            if says is not None:
                judged += 1
                counts["follows"] += verdict == says
    shares = {key: counts[key] / max(1, replies) for key in ("right", "own", "scaffold")}
    shares["follows"] = counts["follows"] / max(1, judged)
    if kind == "pointwise":
        shares.pop("own")  # the truth is not in a pointwise item whose candidate is wrong
    return {key: round(value, 3) for key, value in shares.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("demo", type=Path)
    parser.add_argument("--runs", nargs="+", default=["warmstart", "grpo", "spark"])
    parser.add_argument("--style", choices=sorted(STYLES), default="lookup")
    args = parser.parse_args()
    evals = args.demo / "eval"
    for run in args.runs:
        for kind in ("pairwise", "pointwise"):
            final = evals / run / kind / "single.jsonl"
            if final.exists():
                print(f"{run} final {kind}", json.dumps(scaffolding(final, kind, args.style)))
            for step in sorted((evals / "curves" / run).glob("step-*"), key=lambda p: int(p.name.split("-")[1])):
                path = step / kind / "single.jsonl"
                if path.exists():
                    print(f"{run} {step.name} {kind}", json.dumps(scaffolding(path, kind, args.style)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
