"""The `sparkrl` command: one subcommand per module in `sparkrl.commands`.

Each command module defines HELP, `add_arguments(parser)` and `run(args) -> int`, and imports
heavy libraries (torch, trl) inside `run`, so that `sparkrl --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from sparkrl import __version__

# Subcommand name -> module under sparkrl.commands.
COMMANDS: dict[str, str] = {
    "verify": "verify",
    "recycle": "recycle",
    "train": "train",
    "eval": "evaluate",
    "demo": "demo",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sparkrl",
        description="SPARK: policy and generative reward co-evolving in one model (RLVR on TRL).",
    )
    parser.add_argument("--version", action="version", version=f"sparkrl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"sparkrl.commands.{module_name}")
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
