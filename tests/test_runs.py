"""Building a run without a model: TRL's GRPOConfig and the batch arithmetic sparkrl derives."""

from pathlib import Path

import pytest

from sparkrl.config import ConfigError, config_from_mapping, load_config
from sparkrl.runs import build_grpo_args, precision_defaults
from sparkrl.schedule import optimizer_steps_per_round

REPO = Path(__file__).resolve().parents[1]


def _config(tmp_path, **grpo):
    return config_from_mapping({
        "model": {"path": "m"},
        "data": {"train": "t.jsonl"},
        "output_dir": str(tmp_path / "run"),
        "spark": {"policy_steps": 3},
        "grpo": {"num_generations": 4, "per_device_train_batch_size": 8, "use_cpu": True, **grpo},
    })


def test_max_steps_counts_every_optimizer_step_of_every_round(tmp_path):
    args = build_grpo_args(_config(tmp_path, steps_per_generation=4, gradient_accumulation_steps=2, save_steps=4))
    assert optimizer_steps_per_round(args) == 2
    assert args.max_steps == 3 * 2 * 2  # alternate: up to one recycled round per policy round


@pytest.mark.parametrize(
    "grpo, suggestion",
    [
        ({"steps_per_generation": 2, "save_steps": 3}, 4),
        ({"steps_per_generation": 4, "gradient_accumulation_steps": 2, "save_steps": 7}, 8),
        ({"generation_batch_size": 24, "save_steps": 1}, 3),
        ({"steps_per_generation": 2, "num_iterations": 2, "save_steps": 0.2}, 4),  # a share: 5 of 24 steps
    ],
)
def test_checkpoints_inside_a_round_are_rejected(tmp_path, grpo, suggestion):
    with pytest.raises(ConfigError, match=r"grpo\.save_steps") as error:
        build_grpo_args(_config(tmp_path, **grpo))
    message = str(error.value)
    assert f"e.g. grpo.save_steps={suggestion}" in message
    assert "grpo.steps_per_generation" in message and "1 process(es)" in message


@pytest.mark.parametrize(
    "grpo",
    [
        {"steps_per_generation": 2, "save_steps": 4},
        {"steps_per_generation": 2, "save_steps": 3, "save_strategy": "no"},
        {"steps_per_generation": 2, "num_iterations": 2, "save_steps": 0.5},  # a share: 12 of 24 steps
    ],
)
def test_checkpoints_between_rounds_are_accepted(tmp_path, grpo):
    build_grpo_args(_config(tmp_path, **grpo))


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_example_configs_checkpoint_between_rounds(path):
    # use_cpu: this machine has no GPU, and TRL rejects bf16 without one.
    args = build_grpo_args(load_config(path, ["grpo.use_cpu=true"]))
    assert args.save_steps % optimizer_steps_per_round(args) == 0


def test_freeze_stops_gradients_for_named_prefixes_only(tiny_model_and_tokenizer):
    import copy

    from sparkrl.models import freeze_parameters

    model = copy.deepcopy(tiny_model_and_tokenizer[0])
    frozen = freeze_parameters(model, ["model.embed_tokens", "model.layers.0."])
    names = {name: p.requires_grad for name, p in model.named_parameters()}
    assert frozen > 0
    assert not any(v for k, v in names.items() if k.startswith(("model.embed_tokens", "model.layers.0.")))
    assert any(v for k, v in names.items() if k.startswith("model.layers.1."))
    with pytest.raises(ConfigError, match="no parameter name starts with 'model.vision_tower'"):
        freeze_parameters(model, ["model.vision_tower"])


@pytest.mark.parametrize("value", ["model.vision_tower", [""], [3]])
def test_bad_freeze_lists_are_rejected(value):
    with pytest.raises(ConfigError, match="model.freeze"):
        config_from_mapping({"model": {"path": "m", "freeze": value}, "data": {"train": "t"}})


def test_freeze_list_from_yaml_is_a_tuple():
    config = config_from_mapping({"model": {"path": "m", "freeze": ["model.vision_tower"]}, "data": {"train": "t"}})
    assert config.model.freeze == ("model.vision_tower",)


@pytest.mark.parametrize("key,value", [("gradient_checkpointing", "no"), ("bf16", "off"), ("use_vllm", "yes")])
def test_yes_no_words_for_trl_switches_are_rejected(tmp_path, key, value):
    # YAML here reads only true/false as booleans; TRL would take the string "no" as true.
    with pytest.raises(ConfigError, match=f"grpo.{key}: expected true or false"):
        build_grpo_args(_config(tmp_path, **{key: value}))
    assert build_grpo_args(_config(tmp_path, gradient_checkpointing=False)).gradient_checkpointing is False


@pytest.mark.parametrize("strategy", ["epoch", "best"])
def test_save_strategies_that_can_stop_inside_a_round_are_rejected(tmp_path, strategy):
    extra = {"metric_for_best_model": "loss"} if strategy == "best" else {}
    with pytest.raises(ConfigError, match="can save inside a round"):
        build_grpo_args(_config(tmp_path, save_strategy=strategy, **extra))
    assert build_grpo_args(_config(tmp_path, save_strategy="no")).save_strategy == "no"


def test_cpu_runs_train_in_float32_unless_they_ask_for_mixed_precision(tmp_path):
    # TRL turns bf16 on by default; on the CPU that means bfloat16 autocast in every forward pass.
    assert build_grpo_args(_config(tmp_path)).bf16 is False
    assert build_grpo_args(_config(tmp_path, bf16=True)).bf16 is True


@pytest.mark.parametrize(
    "section, cuda, expected",
    [
        ({}, False, {"bf16": False}),
        ({"use_cpu": True}, True, {"bf16": False}),
        ({}, True, {}),  # a GPU run keeps TRL's default
        ({"bf16": True}, False, {}),
        ({"fp16": False}, False, {}),  # a run that names either choice keeps it
    ],
)
def test_precision_defaults(section, cuda, expected):
    assert precision_defaults(section, cuda=cuda) == expected
