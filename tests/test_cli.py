"""The `sparkrl` command as users run it: `python -m sparkrl`, in a fresh process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sparkrl.cli import COMMANDS

SUBCOMMANDS = ("demo", "train", "eval", "recycle", "verify")


def sparkrl(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sparkrl", *argv], capture_output=True, text=True, timeout=120)


def test_help_lists_every_subcommand() -> None:
    result = sparkrl("--help")
    assert result.returncode == 0, result.stderr
    assert set(COMMANDS) == set(SUBCOMMANDS)
    usage = result.stdout.split("positional arguments:")[1]
    listed = {line.split()[0] for line in usage.splitlines()[2:] if line.startswith("    ") and line.split()}
    assert listed >= set(SUBCOMMANDS), result.stdout


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_subcommand_has_help(name: str) -> None:
    result = sparkrl(name, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: sparkrl {name} ")
    assert "options:" in result.stdout and result.stderr == ""


def test_demo_format_is_for_the_text_task_only(tmp_path) -> None:
    result = sparkrl("demo", "--modality", "image", "--format", "sum", "--out", str(tmp_path / "d"))
    assert result.returncode == 2 and "--format applies to the text task only" in result.stderr
    assert not (tmp_path / "d").exists()
    result = sparkrl("demo", "--format", "two-bit")
    assert result.returncode == 2 and "invalid choice" in result.stderr
