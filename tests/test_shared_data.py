"""The shared real-data lookup of tests/conftest.py: where it looks, and what a missing file does."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_the_environment_variable_overrides_the_folder(shared_data, monkeypatch, tmp_path):
    (tmp_path / "rows.jsonl").write_text("{}\n", encoding="utf-8")
    monkeypatch.setenv("SPARKRL_SHARED_DATA", str(tmp_path))
    assert shared_data("rows.jsonl") == tmp_path / "rows.jsonl"


def test_a_missing_file_skips_locally_and_fails_under_ci(shared_data, monkeypatch, tmp_path):
    monkeypatch.setenv("SPARKRL_SHARED_DATA", str(tmp_path))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="absent.jsonl"):
        shared_data("absent.jsonl")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        shared_data("absent.jsonl")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="SPARKRL_SHARED_DATA"):
        shared_data("absent.jsonl")


def test_the_default_folder_is_beside_the_repository(shared_data, monkeypatch):
    monkeypatch.delenv("SPARKRL_SHARED_DATA", raising=False)
    monkeypatch.delenv("CI", raising=False)
    repo = Path(__file__).resolve().parents[1]
    assert shared_data("gsm8k_test.jsonl") == repo.parent / "shared" / "data" / "gsm8k_test.jsonl"
