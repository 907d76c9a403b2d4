"""`sparkrl train`: SPARK (or plain GRPO with `spark.schedule=off`) from a YAML configuration."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sparkrl.config import RunConfig

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
    from sparkrl.config import ConfigError, load_config

    try:
        config = load_config(args.config, args.overrides)
    except ConfigError as exc:
        print(f"sparkrl train: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        return dry_run(config, args.config)
    from sparkrl.runs import run_training

    try:
        run_training(config, resume=args.resume)
    except ConfigError as exc:
        print(f"sparkrl train: {exc}", file=sys.stderr)
        return 2
    print(f"sparkrl train: finished; model in {config.output_dir}/final, metrics in {config.output_dir}/metrics.jsonl")
    return 0


def dry_run(config: RunConfig, path: str) -> int:
    """Validate what can be checked without loading a model (TRL's GRPOConfig, the batch
    arithmetic, the paths), then print the configuration."""
    import yaml

    from sparkrl.config import ConfigError
    from sparkrl.runs import optimizer_steps_per_round, validate_run

    try:
        grpo_args = validate_run(config)
    except ConfigError as exc:
        print(f"sparkrl train: {path}: {exc}", file=sys.stderr)
        return 2
    print(yaml.safe_dump(config.to_dict(), sort_keys=False))
    print(
        f"# {optimizer_steps_per_round(grpo_args)} optimizer step(s) per round, at most {grpo_args.max_steps} "
        f"in all, with {grpo_args.world_size} process(es)"
    )
    return 0
