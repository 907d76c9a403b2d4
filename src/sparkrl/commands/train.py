"""`sparkrl train`: SPARK (or plain GRPO with `spark.schedule=off`) from a YAML configuration."""

from __future__ import annotations

import argparse
import os
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
    parser.add_argument(
        "--dry-run", action="store_true",
        help="check the configuration, every row of the data files and the tokenizer's chat template, "
        "print the configuration and exit",
    )
    parser.add_argument(
        "--debug", action="store_true",
        help="show the Python traceback of an error (also with SPARKRL_DEBUG=1); by default an error is one line",
    )


# Errors about the user's files and settings: one line on stderr, exit 2, no traceback.
MAX_LISTED_ROWS = 20


class BadRows(Exception):
    """Every bad row of a data file, one line each."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from sparkrl.data import DatasetError
    from sparkrl.errors import ConfigError, ImageError

    return ConfigError, DatasetError, ImageError


def _debug(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "debug", False)) or os.environ.get("SPARKRL_DEBUG", "") not in ("", "0")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def run(args: argparse.Namespace) -> int:
    from sparkrl.config import load_config
    from sparkrl.errors import ConfigError

    try:
        config = load_config(args.config, args.overrides)
    except ConfigError as exc:
        if _debug(args):
            raise
        print(f"sparkrl train: {_one_line(exc)}", file=sys.stderr)
        return 2
    if args.dry_run:
        return dry_run(config, args.config)
    from sparkrl.runs import run_training

    try:
        run_training(config, resume=args.resume)
    except _user_errors() as exc:
        if _debug(args):
            raise
        print(f"sparkrl train: {_one_line(exc)}", file=sys.stderr)
        return 2
    print(f"sparkrl train: finished; model in {config.output_dir}/final, metrics in {config.output_dir}/metrics.jsonl")
    return 0


def dry_run(config: RunConfig, path: str) -> int:
    """Check what can be checked without loading model weights: TRL's GRPOConfig and the
    batch arithmetic, the paths, every row of the data files (each bad row listed, up to
    MAX_LISTED_ROWS), and the tokenizer's chat template; then print the configuration."""
    import yaml

    from sparkrl.models import load_tokenizer
    from sparkrl.runs import data_files, validate_run
    from sparkrl.schedule import optimizer_steps_per_round

    try:
        grpo_args = validate_run(config)
        counts = {key: check_data(file, config, key) for key, file in data_files(config)}
        load_tokenizer(config.model.path, config.model.trust_remote_code, config.prompt.chat_template)
    except BadRows as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except _user_errors() as exc:
        print(f"sparkrl train: {path}: {_one_line(exc)}", file=sys.stderr)
        return 2
    print(yaml.safe_dump(config.to_dict(), sort_keys=False))
    print(
        f"# {optimizer_steps_per_round(grpo_args)} optimizer step(s) per round, at most {grpo_args.max_steps} "
        f"in all, with {grpo_args.world_size} process(es)"
    )
    for key, (good, skipped) in counts.items():
        note = f", {skipped} bad rows skipped (data.loader.skip_bad_rows)" if skipped else ""
        print(f"# {key}: {good} rows{note}")
    return 0


def check_data(file: str, config: RunConfig, key: str = "data.train") -> tuple[int, int]:
    """Read a whole data file (`key`: which one, for how its answers are read); (good rows,
    skipped rows). Bad rows raise `BadRows`, listing them (up to MAX_LISTED_ROWS), unless
    `data.loader.skip_bad_rows` skips them."""
    from dataclasses import replace

    from sparkrl.data import DataConfig, load_examples
    from sparkrl.runs import label_rule

    loader = DataConfig(**config.data.loader)
    loaded = load_examples(file, replace(loader, skip_bad_rows=True), labels=label_rule(config, key))
    if loaded.skipped and not loader.skip_bad_rows:
        lines = [f"sparkrl train: {bad}" for bad in loaded.skipped[:MAX_LISTED_ROWS]]
        if len(loaded.skipped) > MAX_LISTED_ROWS:
            lines.append(f"sparkrl train: ... and {len(loaded.skipped) - MAX_LISTED_ROWS} more bad rows")
        lines.append(
            f"sparkrl train: {file}: {len(loaded.skipped)} bad rows of {len(loaded.skipped) + len(loaded.examples)}; "
            "fix them, or set data.loader.skip_bad_rows: true to train without them"
        )
        raise BadRows("\n".join(lines))
    return len(loaded.examples), len(loaded.skipped)
