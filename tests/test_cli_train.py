"""`sparkrl train --dry-run`: everything that can be checked without a model, checked in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sparkrl.cli import main


@pytest.fixture
def run_yaml(tmp_path: Path) -> Path:
    """A valid run: an (empty) model folder, which a model load would reject, and a train file."""
    (tmp_path / "model").mkdir()
    (tmp_path / "train.jsonl").write_text(json.dumps({"question": "1+1?", "answer": "2"}) + "\n")
    config = {
        "model": {"path": str(tmp_path / "model")},
        "data": {"train": str(tmp_path / "train.jsonl")},
        "output_dir": str(tmp_path / "run"),
        "spark": {"policy_steps": 3},
        "grpo": {
            "num_generations": 4,
            "per_device_train_batch_size": 8,
            "steps_per_generation": 2,
            "save_steps": 4,
            "use_cpu": True,
        },
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_dry_run_validates_and_prints_without_loading_a_model(run_yaml, capsys):
    assert main(["train", "--config", str(run_yaml), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert yaml.safe_load(out)["grpo"]["save_steps"] == 4
    assert "2 optimizer step(s) per round, at most 12 in all" in out
    assert not (run_yaml.parent / "run").exists()  # no run folder, no checkpoint, no model


@pytest.mark.parametrize(
    "override, expected",
    [
        ("grpo.bogus_field=1", "bogus_field"),
        ("grpo.generation_batch_size=12", "generation_batch_size"),
        ("grpo.save_steps=3", "grpo.save_steps (3) must be a multiple of the optimizer steps per round"),
    ],
)
def test_dry_run_rejects_bad_grpo_fields(run_yaml, capsys, override, expected):
    assert main(["train", "--config", str(run_yaml), override, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert str(run_yaml) in err and expected in err


@pytest.mark.parametrize("key", ["data.train", "data.eval"])
def test_dry_run_rejects_missing_data_files(run_yaml, capsys, key):
    missing = run_yaml.parent / "missing.jsonl"
    assert main(["train", "--config", str(run_yaml), f"{key}={missing}", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"{key} '{missing}': file or folder not found" in err


def test_dry_run_rejects_a_missing_model_folder(run_yaml, capsys):
    assert main(["train", "--config", str(run_yaml), "model.path=/nowhere/model", "--dry-run"]) == 2
    assert "model.path '/nowhere/model' is not a local folder" in capsys.readouterr().err
