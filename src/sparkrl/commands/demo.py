"""`sparkrl demo`: the embedded default, a tiny model on which policy and judge co-evolve on a CPU."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HELP = "run the embedded demo: warm start a tiny model, train plain GRPO and SPARK, evaluate, report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from sparkrl.demo.workload import TEXT_FORMATS  # light: no torch or transformers

    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default runs/demo)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--modality", choices=("text", "image"), default="text")
    parser.add_argument("--format", dest="text_format", choices=sorted(TEXT_FORMATS), default=None,
                        help="text task format (default: the demo's, see docs/demo.md)")
    parser.add_argument("--quick", action="store_true", help="a small version for tests (about a minute; claims not expected to hold)")
    parser.add_argument("--ablations", action="store_true", help="also run SPARK with only pointwise, only pairwise, only reflection items")
    parser.add_argument("--jobs", type=int, help="processes at a time (default: the number of cores, at most 4)")
    parser.add_argument("--fresh", action="store_true", help="delete --out first instead of resuming what it holds")
    parser.add_argument("--build-warm-start", action="store_true",
                        help="build the warm start from scratch instead of copying the one sparkrl ships (the default "
                             "format's: about 7 minutes on 2 cores)")


def run(args: argparse.Namespace) -> int:
    import shutil

    from sparkrl.demo.claims import equal_rounds
    from sparkrl.demo.pipeline import DemoConfig, run_demo
    from sparkrl.demo.report import model_names
    from sparkrl.demo.runs import RunError

    options = {"jobs": args.jobs} if args.jobs else {}
    if args.text_format and args.modality == "image":
        print("sparkrl demo: --format applies to the text task only, not to --modality image", file=sys.stderr)
        return 2
    if args.text_format:
        options["text_format"] = args.text_format
    try:
        config = DemoConfig(out=args.out, seed=args.seed, modality=args.modality, quick=args.quick, ablations=args.ablations,
                            build_warm_start=args.build_warm_start, **options)
    except ValueError as err:
        print(f"sparkrl demo: {err}", file=sys.stderr)
        return 2
    if args.fresh and args.out.exists():
        # Only a demo folder (or an empty one) is deleted: `--out . --fresh` must not wipe a project.
        if any(args.out.iterdir()) and not (args.out / "demo-config.json").exists():
            print(f"sparkrl demo: --fresh refuses to delete {args.out}: it is not empty and holds no "
                  "demo-config.json (not a demo folder)", file=sys.stderr)
            return 2
        shutil.rmtree(args.out)
    started = time.perf_counter()

    def progress(message: str) -> None:
        print(f"[demo {time.perf_counter() - started:5.0f}s] {message}", flush=True)

    try:
        summary = run_demo(config, progress)
    except RunError as err:
        print(f"sparkrl demo: {err}", file=sys.stderr)
        return 1
    for name in model_names(summary):
        row = summary[name]
        print(f"{name:10s} policy {row['policy_accuracy']:.3f}  pointwise judge {row['judge_pointwise_accuracy']:.3f}  "
              f"pairwise judge {row['judge_pairwise_accuracy']:.3f}  self-reflection {row['self_reflection_accuracy']:.3f}")
    for claim in summary["claims"]:
        print(f"claim {'held' if claim['holds'] else 'NOT met'}: {claim['name']} ({claim['detail']})")
    if line := equal_rounds(summary):
        print(line)
    return 0
