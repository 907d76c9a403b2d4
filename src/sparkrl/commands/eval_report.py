"""`sparkrl eval report`: compare finished evaluations in one table (models x benchmarks).

Example:
    sparkrl eval report eval/base/gsm8k eval/spark/gsm8k eval/base/pairs eval/spark/pairs \\
        --names base,spark,base,spark --baseline base --out eval/report

See sparkrl/eval_report.py for how benchmarks are named and docs/evaluation.md for the files.
"""

from __future__ import annotations

import argparse
import sys

HELP = "compare finished evaluations: models as rows, benchmarks as columns (report.md, .csv, .png)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folders", nargs="+", metavar="RUN_DIR", help="evaluation folders (each with summary.json)")
    parser.add_argument("--out", required=True, help="folder for report.md, report.csv and report.png")
    parser.add_argument("--baseline", help="model the differences are taken against (default: the first)")
    parser.add_argument(
        "--names", help="comma-separated model names, one per RUN_DIR (default: the backend's model)"
    )


def run(args: argparse.Namespace) -> int:
    from sparkrl.eval_report import ReportError, build_report, load_evaluations, report_markdown, write_report

    names = None if args.names is None else [n.strip() for n in args.names.split(",")]
    try:
        report = build_report(load_evaluations(args.folders, names), args.baseline)
    except ReportError as err:
        print(f"sparkrl eval report: {err}", file=sys.stderr)
        return 2
    paths = write_report(report, args.out)
    print(report_markdown(report), end="")
    print(f"report in {args.out} ({', '.join(p.name for p in paths)})")
    return 0
