"""A real pretrained chat model on every path: LoRA training (with a recycled round), resume,
merged and adapter folders, its chat template for policy and recycled prompts, base models
without a template, and `sparkrl eval` on real GSM8K text.

The model is SmolLM2-135M-Instruct (see the `real_model` fixture). Runs are kept small
(a few prompts, a few dozen new tokens) so that the file takes about two minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from sparkrl.config import PromptConfig, config_from_mapping
from sparkrl.rows import Example

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = [(a, b) for a in (3, 5, 8, 12) for b in (4, 9)]


def _train_file(folder: Path) -> Path:
    path = folder / "train.jsonl"
    rows = [{"question": f"What is {a} + {b}?", "answer": str(a + b)} for a, b in QUESTIONS]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _config(model: Path, data: Path, out: Path, **model_extra) -> dict:
    return {
        "model": {"path": str(model), "dtype": "float32", **model_extra},
        "data": {"train": str(data)},
        "output_dir": str(out),
        "seed": 0,
        "prompt": {"suffix": "Answer inside \\boxed{}.", "system": "You are a careful calculator."},
        # `mix`: the second round already trains recycled items beside dataset prompts.
        "spark": {"schedule": "mix", "policy_steps": 2},
        # The model answers almost every sum wrong, so the 0/1 rewards alone would leave nothing
        # to learn; a reward that varies with the text gives every group a gradient.
        "rewards": {"extra": [{"function": "test_real_model:characters", "weight": 1.0}]},
        "grpo": {
            "num_generations": 2,
            "per_device_train_batch_size": 8,
            "max_completion_length": 16,
            "learning_rate": 1e-3,
            "logging_steps": 1,
            "save_steps": 1,
            "gradient_checkpointing": False,
            "report_to": [],
            "use_cpu": True,
        },
    }


def characters(prompts, completions, **columns):
    """An extra reward that differs between almost any two completions."""
    from sparkrl.rewards import completion_text

    return [len(completion_text(c)) / 100 for c in completions]


LORA = {"lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}}


@pytest.fixture(scope="module")
def lora_run(real_model, tmp_path_factory):
    """One SPARK run with LoRA (a policy round, then a round with recycled items), trained
    in-process so the weights can be compared before and after. It starts from the real model
    with its chat template removed (a base model, as sparkrl sees it) and the template given
    back as a file (`prompt.chat_template`), so that path is trained, saved and reloaded too."""
    import torch

    from sparkrl.runs import build_trainer, save_final, save_run_config

    folder = tmp_path_factory.mktemp("real-lora")
    base = _base_model_folder(real_model, folder / "base")
    template = folder / "chat.jinja"
    shutil.copy(real_model / "chat_template.jinja", template)
    spec = _config(base, _train_file(folder), folder / "run", **LORA)
    spec["prompt"]["chat_template"] = str(template)
    config = config_from_mapping(spec)
    save_run_config(config)
    trainer = build_trainer(config)
    eos_ids = trainer.generation_config.eos_token_id
    base_weights = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_" not in n}
    lora_before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_B" in n}
    trainer.train()
    params = dict(trainer.model.named_parameters())
    changed_base = [n for n in base_weights if not torch.equal(params[n], base_weights[n])]
    changed_lora = [n for n in lora_before if not torch.equal(params[n], lora_before[n])]
    rounds = [json.loads(line) for line in (folder / "run" / "spark_rounds" / "rank-0.jsonl").read_text().splitlines()]
    save_final(trainer, folder / "run" / "final", config.model)
    return {"folder": folder / "run", "spec": spec, "changed_base": changed_base, "changed_lora": changed_lora,
            "rounds": rounds, "eos_ids": eos_ids if isinstance(eos_ids, list) else [eos_ids]}


def test_lora_trains_only_the_adapter_through_a_recycled_round(lora_run):
    rounds = lora_run["rounds"]
    assert [r["recycled"] > 0 for r in rounds] == [False, True]
    assert lora_run["changed_base"] == []
    assert lora_run["changed_lora"], "no LoRA weight moved"
    checkpoint = lora_run["folder"] / "checkpoint-1"
    # checkpoints hold the adapter (not the full weights) and the SPARK state
    assert (checkpoint / "adapter_model.safetensors").is_file() and not (checkpoint / "model.safetensors").exists()
    assert (checkpoint / "sparkrl_state.json").is_file()


def test_final_folder_is_a_merged_model_and_its_adapter_gives_the_same_model(lora_run):
    import torch

    from sparkrl.models import load_model_and_tokenizer

    final = lora_run["folder"] / "final"
    assert (final / "config.json").is_file() and (final / "adapter" / "adapter_config.json").is_file()
    merged, tokenizer = load_model_and_tokenizer(final)
    # the adapter folder loads on its own: base weights from its config, tokenizer (with the
    # run's chat template, which the base folder lacks) from the folder itself
    from_adapter, adapter_tokenizer = load_model_and_tokenizer(final / "adapter")
    assert adapter_tokenizer.chat_template == tokenizer.chat_template
    ids = tokenizer("What is 3 + 4?", return_tensors="pt").input_ids
    with torch.no_grad():
        a, b = merged(ids).logits, from_adapter(ids).logits
    assert torch.allclose(a, b, atol=1e-4)
    assert tokenizer.chat_template == (final.parent.parent / "chat.jinja").read_text()  # saved with the model


def test_lora_run_resumes_to_the_same_steps(lora_run, real_model, tmp_path):
    """Resume from the first checkpoint in a fresh folder: the later steps log the same loss
    and gradient norm as the uninterrupted run."""
    original = lora_run["folder"]
    out = tmp_path / "resumed"
    shutil.copytree(original / "checkpoint-1", out / "checkpoint-1")
    config = {**lora_run["spec"], "output_dir": str(out)}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "sparkrl", "train", "--config", str(tmp_path / "run.yaml"), "--resume"],
        capture_output=True, text=True, cwd=REPO, timeout=600,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},  # for the `characters` reward
    )
    assert result.returncode == 0, result.stderr[-3000:]

    def steps(folder):
        rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        return {r["step"]: (r["loss"], r["grad_norm"]) for r in rows if "grad_norm" in r}

    resumed, whole = steps(out), steps(original)
    assert sorted(resumed) == [2]
    for step in (2,):
        assert resumed[step] == pytest.approx(whole[step], rel=1e-4, abs=1e-6)
    assert (out / "final" / "adapter").is_dir()


def test_policy_and_recycled_prompts_render_through_the_runs_chat_template(lora_run):
    """The rows the run trained on (round log), recycled items included, rendered with the
    tokenizer the run saved: same system prompt and turn markers, and generation stops at the
    end-of-turn token that closes every turn."""
    from sparkrl.models import load_tokenizer
    from sparkrl.training import example_row

    tokenizer = load_tokenizer(lora_run["folder"] / "final")
    prompt = PromptConfig(**{k: v for k, v in lora_run["spec"]["prompt"].items() if k != "chat_template"})
    items = [json.loads(item) for r in lora_run["rounds"] for item in r["items"]]
    kinds = {item["task"] for item in items}
    assert "policy" in kinds and kinds - {"policy"}, kinds
    for item in items:
        messages = example_row(Example.from_dict(item), prompt)["prompt"]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert text.startswith("<|im_start|>system\nYou are a careful calculator.<|im_end|>\n<|im_start|>user\n")
        assert text.endswith("<|im_end|>\n<|im_start|>assistant\n")
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in lora_run["eos_ids"]


def _base_model_folder(real_model: Path, folder: Path) -> Path:
    """The real model's folder without its chat template: a base model, as far as sparkrl sees."""
    folder.mkdir()
    for item in real_model.iterdir():
        if item.name != "chat_template.jinja":
            (folder / item.name).symlink_to(item)
    config = json.loads((real_model / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (folder / "tokenizer_config.json").unlink()
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


def _eval(capsys, *args: str) -> SimpleNamespace:
    """`sparkrl eval ...` in this process (a new interpreter would pay for its imports again)."""
    from sparkrl.cli import main

    capsys.readouterr()
    code = main(["eval", *args, "--no-progress"])
    out = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)


def test_a_base_model_needs_a_chat_template_and_takes_one_from_a_file(real_model, tmp_path, gsm8k_test, capsys):
    base = _base_model_folder(real_model, tmp_path / "base")
    common = ["reasoning", "--model", str(base), "--data", f"gsm8k:{gsm8k_test}", "--limit", "1", "--max-new-tokens", "4"]
    refused = _eval(capsys, *common, "--out", str(tmp_path / "refused"))
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0 and "--chat-template" in refused.stderr
    template = tmp_path / "chat.jinja"
    template.write_text(
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    taken = _eval(capsys, *common, "--out", str(tmp_path / "taken"), "--chat-template", str(template))
    assert taken.returncode == 0, taken.stderr[-2000:]


def test_eval_runs_every_strategy_and_pairwise_judging_on_real_gsm8k(
    lora_run, real_model, tmp_path, gsm8k_test, gsm8k_solutions, capsys
):
    # The run's adapter folder is accepted as a model (its base read from the adapter config).
    adapter = lora_run["folder"] / "final" / "adapter"
    out = tmp_path / "reasoning"
    result = _eval(
        capsys, "reasoning", "--model", str(adapter), "--data", f"gsm8k:{gsm8k_test}", "--out", str(out),
        "--limit", "1", "--max-new-tokens", "16", "--judge-max-new-tokens", "4", "--n", "2",
        "--temperature", "1.0", "--strategy", "single", "--strategy", "reflection", "--strategy", "best_of_n",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["strategies"]) == {"single", "reflection", "best_of_n"}
    assert all(s["n"] == 1 and 0.0 <= s["accuracy"] <= 1.0 for s in summary["strategies"].values())
    pairwise = _eval(
        capsys, "pairwise", "--model", str(real_model), "--data", f"gsm8k-solutions:{gsm8k_solutions}",
        "--out", str(tmp_path / "pairwise"), "--limit", "1", "--judge-max-new-tokens", "4",
    )
    assert pairwise.returncode == 0, pairwise.stderr[-3000:]
    judged = json.loads((tmp_path / "pairwise" / "summary.json").read_text())
    assert 0.0 <= judged["strategies"]["single"]["accuracy"] <= 1.0
    # one GSM8K solution pair, judged in both orders
    records = [json.loads(line) for line in (tmp_path / "pairwise" / "single.jsonl").read_text().splitlines()]
    assert len(records) == 1 and len(records[0]["probes"]) == 2


def test_the_readmes_lora_example_config_checks_out(real_model):
    result = subprocess.run(
        [sys.executable, "-m", "sparkrl", "train", "--config", "configs/smollm2-135m-lora.yaml",
         f"model.path={real_model}", "--dry-run"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "# data.train: 100 rows" in result.stdout
    assert yaml.safe_load(result.stdout.split("\n# ")[0])["model"]["lora"]["target_modules"] == "all-linear"
