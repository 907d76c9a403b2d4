"""Tests for sparkrl.tiny.model: shape, determinism, save/load, generate, and TRL's GRPOTrainer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from sparkrl.tiny.model import SIZES, TinySize, build_tiny_model, parameter_count, resolve_size
from sparkrl.tiny.tokenizer import build_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def test_sizes_are_a_few_hundred_thousand_parameters(tokenizer) -> None:
    counts = {name: parameter_count(build_tiny_model(tokenizer, 0, name)) for name in SIZES}
    assert counts["nano"] < counts["micro"] < counts["small"] < 1_000_000
    assert 200_000 < counts["micro"] < 500_000


def test_build_is_seeded_and_leaves_global_rng_alone(tokenizer) -> None:
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_tiny_model(tokenizer, 1, "nano")
    assert torch.equal(torch.rand(1), before)
    b = build_tiny_model(tokenizer, 1, "nano")
    c = build_tiny_model(tokenizer, 2, "nano")
    weight = "model.layers.0.self_attn.q_proj.weight"
    assert torch.equal(a.state_dict()[weight], b.state_dict()[weight])
    assert not torch.equal(a.state_dict()[weight], c.state_dict()[weight])


def test_vocab_and_special_ids_match_the_tokenizer(tokenizer) -> None:
    model = build_tiny_model(tokenizer, 0, "nano")
    assert model.config.vocab_size == len(tokenizer)
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id
    assert model.get_input_embeddings().weight.data_ptr() == model.get_output_embeddings().weight.data_ptr()


def test_untied_model_has_its_own_output_layer_and_survives_a_save(tokenizer, tmp_path: Path) -> None:
    tied = build_tiny_model(tokenizer, 0, "nano")
    model = build_tiny_model(tokenizer, 0, "nano", tie_embeddings=False)
    assert model.get_input_embeddings().weight.data_ptr() != model.get_output_embeddings().weight.data_ptr()
    assert parameter_count(model) == parameter_count(tied) + model.get_output_embeddings().weight.numel()
    model.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert not loaded.config.tie_word_embeddings
    assert torch.equal(loaded.get_output_embeddings().weight, model.get_output_embeddings().weight)
    assert not torch.equal(loaded.get_output_embeddings().weight, loaded.get_input_embeddings().weight)


def test_save_load_and_generate(tokenizer, tmp_path: Path) -> None:
    model = build_tiny_model(tokenizer, 0, "nano")
    model.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    chats = [[{"role": "user", "content": "12+34"}], [{"role": "user", "content": "Check 1+2=3\nPut Yes or No in \\boxed{}"}]]
    batch = tokenizer.apply_chat_template(chats, add_generation_prompt=True, padding=True, return_tensors="pt", return_dict=True)
    out = loaded.generate(**batch, do_sample=False, max_new_tokens=5, min_new_tokens=5)
    assert out.shape == (2, batch["input_ids"].shape[1] + 5)
    again = model.generate(**batch, do_sample=False, max_new_tokens=5, min_new_tokens=5)
    assert torch.equal(out, again)


@pytest.mark.parametrize(
    "kwargs,match",
    [({"hidden": 96, "heads": 5}, "divisible"), ({"hidden": 12, "heads": 4}, "even"), ({"layers": 0}, "layers")],
)
def test_size_validation(kwargs: dict, match: str) -> None:
    shape = {"hidden": 64, "layers": 2, "heads": 4, "intermediate": 128} | kwargs
    with pytest.raises(ValueError, match=match):
        TinySize(**shape)


def test_unknown_size_name() -> None:
    with pytest.raises(ValueError, match="micro"):
        resolve_size("huge")


def test_grpo_trainer_runs_a_step_on_the_tiny_model(tokenizer, tmp_path: Path) -> None:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    model = build_tiny_model(tokenizer, 0, "nano")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    prompts = [[{"role": "user", "content": f"{a}+{a + 1}"}] for a in range(10, 14)]

    def reward_digits(completions, **_):
        return [float(sum(ch.isdigit() for ch in c[0]["content"])) for c in completions]

    args = GRPOConfig(
        output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4, max_completion_length=8,
        max_steps=1, learning_rate=1e-2, report_to="none", save_strategy="no", logging_steps=1, use_cpu=True,
    )
    trainer = GRPOTrainer(model=model, reward_funcs=reward_digits, args=args, train_dataset=Dataset.from_dict({"prompt": prompts}), processing_class=tokenizer)
    trainer.train()
    assert any(not torch.equal(before[n], p) for n, p in model.named_parameters())


def test_the_vision_language_model_s_language_half_is_the_text_model_s_configuration() -> None:
    from sparkrl.tiny.model import llama_config
    from sparkrl.tiny_vl.model import TinyVLSize, build_tiny_vl_model, build_vl_processor

    size = TinyVLSize()
    processor = build_vl_processor(size)
    model = build_tiny_vl_model(processor, seed=5)
    expected = llama_config(processor.tokenizer, size.language).to_dict()
    got = model.config.text_config.to_dict()
    assert {k: got[k] for k in expected if k in got and k != "transformers_version"} == {
        k: v for k, v in expected.items() if k in got and k != "transformers_version"}
    assert got["vocab_size"] == len(processor.tokenizer) and got["hidden_size"] == size.hidden
    # Same seed, same weights; another seed, other weights; the caller's random state untouched.
    state = torch.random.get_rng_state()
    again = build_tiny_vl_model(processor, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)
    weights = dict(model.named_parameters())
    assert all(torch.equal(p, weights[n]) for n, p in again.named_parameters())
    other = build_tiny_vl_model(processor, seed=6)
    assert not all(torch.equal(p, weights[n]) for n, p in other.named_parameters())
    assert model.generation_config.eos_token_id == processor.tokenizer.eos_token_id


@pytest.mark.parametrize("kwargs,match", [({"hidden": 60}, "TinySize.hidden"), ({"hidden": 20, "heads": 4}, "must be even"),
                                          ({"vision_hidden": 33}, "vision_hidden"), ({"patch_size": 5}, "multiple of patch_size")])
def test_the_vision_language_size_checks_its_language_half_as_the_text_model_s(kwargs: dict, match: str) -> None:
    from sparkrl.tiny_vl.model import TinyVLSize

    with pytest.raises(ValueError, match=match):
        TinyVLSize(**kwargs)
