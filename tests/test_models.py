"""Model loading (sparkrl.models): local folders only, adapter folders, chat template files."""

from __future__ import annotations

import json

import pytest

from sparkrl.errors import ConfigError
from sparkrl.models import adapter_base, is_adapter_folder, load_model_and_tokenizer, load_tokenizer, read_chat_template


def test_a_name_that_is_no_local_folder_is_refused_before_transformers_sees_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="not found; sparkrl reads local folders only"):
        load_model_and_tokenizer("HuggingFaceTB/SmolLM2-135M-Instruct")


def test_a_folder_without_model_or_adapter_config_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="neither a model"):
        load_tokenizer(tmp_path)


def test_adapter_folders_name_a_local_base(tmp_path, tiny_model_dir):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "org/remote-model"}))
    assert is_adapter_folder(adapter) and not is_adapter_folder(tiny_model_dir)
    with pytest.raises(ConfigError, match="is not a local folder"):
        adapter_base(adapter)
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(tiny_model_dir)}))
    assert adapter_base(adapter) == str(tiny_model_dir)
    # an adapter folder without a tokenizer of its own takes its base model's
    assert load_tokenizer(adapter).chat_template == load_tokenizer(tiny_model_dir).chat_template


def test_chat_template_files_are_read_and_checked(tmp_path, tiny_model_dir):
    with pytest.raises(ConfigError, match="cannot read it"):
        read_chat_template(tmp_path / "missing.jinja")
    plain = tmp_path / "plain.jinja"
    plain.write_text("no template here")
    with pytest.raises(ConfigError, match="not a Jinja chat template"):
        read_chat_template(plain)
    template = tmp_path / "chat.jinja"
    template.write_text("{% for m in messages %}[{{ m['content'] }}]{% endfor %}")
    tokenizer = load_tokenizer(tiny_model_dir, chat_template=template)
    assert tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False) == "[hi]"
