"""`sparkrl demo`: not yet implemented (see the open issues)."""

from __future__ import annotations

import argparse
import sys

HELP = "(not yet implemented)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rest", nargs=argparse.REMAINDER)


def run(args: argparse.Namespace) -> int:
    print("sparkrl demo: not implemented yet in this version", file=sys.stderr)
    return 2
