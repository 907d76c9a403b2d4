"""`sparkrl train`: SPARK (or plain GRPO with `spark.schedule=off`) from a YAML configuration."""

from __future__ import annotations

import argparse
import sys

HELP = "train a model with SPARK (GRPO + recycled judge/reflection items) from a YAML config"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML configuration file (see configs/)")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="override any field with a dotted key, e.g. spark.schedule=mix grpo.learning_rate=1e-6",
    )
    parser.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=None,
        metavar="CHECKPOINT",
        help="resume from the newest checkpoint of the run folder, or from the given checkpoint folder",
    )
    parser.add_argument("--dry-run", action="store_true", help="validate the configuration, print it and exit")


def run(args: argparse.Namespace) -> int:
    import yaml

    from sparkrl.config import ConfigError, load_config

    try:
        config = load_config(args.config, args.overrides)
    except ConfigError as exc:
        print(f"sparkrl train: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(yaml.safe_dump(config.to_dict(), sort_keys=False))
        return 0
    from sparkrl.runs import run_training

    try:
        run_training(config, resume=args.resume)
    except ConfigError as exc:
        print(f"sparkrl train: {exc}", file=sys.stderr)
        return 2
    print(f"sparkrl train: finished; model in {config.output_dir}/final, metrics in {config.output_dir}/metrics.jsonl")
    return 0
