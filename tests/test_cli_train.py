"""`sparkrl train --dry-run`: everything that can be checked without loading model weights,
checked in seconds; and errors of `sparkrl train` as one line with a non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sparkrl.cli import main


@pytest.fixture
def run_yaml(tmp_path: Path, tiny_model_dir: Path) -> Path:
    """A valid run: the tiny model folder (its tokenizer has a chat template) and a train file."""
    (tmp_path / "train.jsonl").write_text(json.dumps({"question": "1+1?", "answer": "2"}) + "\n")
    config = {
        "model": {"path": str(tiny_model_dir)},
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


def _bad_rows_file(folder: Path) -> Path:
    rows = [
        json.dumps({"question": "1+1?", "answer": "2"}),
        json.dumps({"question": "2+2?"}),  # no answer
        "{not json",
        json.dumps({"question": "", "answer": "3"}),  # empty question
        json.dumps({"question": "3+3?", "answer": "6"}),
    ]
    path = folder / "bad.jsonl"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_dry_run_reads_every_row_and_lists_each_bad_one(run_yaml, capsys):
    bad = _bad_rows_file(run_yaml.parent)
    assert main(["train", "--config", str(run_yaml), f"data.train={bad}", "--dry-run"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line.split(",")[1].split(":")[0].strip() for line in lines[:3]] == ["line 2", "line 3", "line 4"]
    assert all(line.startswith(f"sparkrl train: {bad}") for line in lines)
    assert "field 'answer'" in lines[0] and "field 'question'" in lines[2]
    assert "3 bad rows of 5" in lines[3] and "skip_bad_rows" in lines[3]


def test_dry_run_honours_skip_bad_rows(run_yaml, capsys):
    bad = _bad_rows_file(run_yaml.parent)
    assert main(["train", "--config", str(run_yaml), f"data.train={bad}", "data.loader.skip_bad_rows=true", "--dry-run"]) == 0
    assert "# data.train: 2 rows, 3 bad rows skipped" in capsys.readouterr().out


def test_dry_run_refuses_a_tokenizer_without_a_chat_template(run_yaml, tiny_model_dir, tmp_path, capsys):
    base = tmp_path / "base"
    base.mkdir()
    for item in tiny_model_dir.iterdir():
        if item.name not in ("chat_template.jinja", "tokenizer_config.json"):
            (base / item.name).symlink_to(item)
    config = json.loads((tiny_model_dir / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (base / "tokenizer_config.json").write_text(json.dumps(config))
    assert main(["train", "--config", str(run_yaml), f"model.path={base}", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no chat template" in err and "prompt.chat_template" in err
    template = tmp_path / "chat.jinja"
    template.write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    assert main(["train", "--config", str(run_yaml), f"model.path={base}", f"prompt.chat_template={template}", "--dry-run"]) == 0


def test_a_bad_row_stops_training_with_one_line_and_no_traceback(run_yaml, capsys):
    bad = _bad_rows_file(run_yaml.parent)
    assert main(["train", "--config", str(run_yaml), f"data.train={bad}"]) == 2
    err = capsys.readouterr().err
    ours = [line for line in err.splitlines() if line.startswith("sparkrl train:")]
    assert len(ours) == 1 and "Traceback" not in err  # (libraries' own warnings may come before it)
    assert ours[0].startswith(f"sparkrl train: {bad}, line 2, field 'answer'")
    assert not (run_yaml.parent / "run" / "final").exists()


def test_debug_shows_the_traceback(run_yaml):
    from sparkrl.data import DatasetError

    bad = _bad_rows_file(run_yaml.parent)
    with pytest.raises(DatasetError):
        main(["train", "--config", str(run_yaml), f"data.train={bad}", "--debug"])


def test_lora_section_is_validated(run_yaml, capsys):
    assert main(["train", "--config", str(run_yaml), "model.lora.r=0", "--dry-run"]) == 2
    assert "model.lora.r must be at least 1" in capsys.readouterr().err
    assert main(["train", "--config", str(run_yaml), "model.lora.rank=8", "--dry-run"]) == 2
    assert "unknown key(s) ['rank']" in capsys.readouterr().err
    assert main(["train", "--config", str(run_yaml), "model.lora.r=8", "--dry-run"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out.split("\n# ")[0])
    assert printed["model"]["lora"] == {"r": 8, "alpha": 32, "dropout": 0.05, "target_modules": "all-linear", "modules_to_save": []}
