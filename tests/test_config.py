import pytest

from sparkrl.config import ConfigError, apply_overrides, config_from_mapping, load_config

BASE = {"model": {"path": "m"}, "data": {"train": "t.jsonl"}}


def test_minimal_config_gets_defaults():
    config = config_from_mapping(BASE)
    assert config.spark.schedule == "alternate"
    assert config.rewards.timeout_s == 5.0
    assert "boxed" in config.prompt.suffix


def test_overrides_use_dotted_keys_and_yaml_values():
    data = apply_overrides(BASE, ["spark.schedule=mix", "grpo.learning_rate=1e-6", "spark.pool_capacity=null"])
    config = config_from_mapping(data)
    assert config.spark.schedule == "mix"
    assert config.grpo["learning_rate"] == pytest.approx(1e-6)
    assert config.spark.pool_capacity is None
    assert BASE["model"] == {"path": "m"}  # the input mapping is not modified


@pytest.mark.parametrize(
    "override, message",
    [
        ("spark.schedul=mix", "unknown key"),
        ("spark.schedule=sometimes", "spark.schedule"),
        ("spark.mix_share=1.5", "mix_share"),
        ("spark.policy_steps=zero", "expected int"),
        ("rewards.timeout_s=-1", "timeout_s"),
        ("spark.recycling={bogus: 1}", "spark.recycling"),
        ("data.loader={answer_format: nope}", "data.loader"),
        ("grpo.max_steps=3", "policy_steps"),
    ],
)
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        config_from_mapping(apply_overrides(BASE, [override]))


def test_missing_model_path_is_explained():
    with pytest.raises(ConfigError, match="model.path"):
        config_from_mapping({"model": {}, "data": {"train": "x"}})


def test_load_config_names_the_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model: {path: m}\ndata: {train: t}\nspark: {schedule: [1]}\n")
    with pytest.raises(ConfigError, match=str(path)):
        load_config(path)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    path.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="YAML"):
        load_config(path)


def test_scientific_notation_without_dot_is_a_float(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model: {path: m}\ndata: {train: t}\ngrpo: {learning_rate: 5e-7, beta: 1.0e-3, max_completion_length: 768}\n")
    config = load_config(path)
    assert config.grpo == {"learning_rate": 5e-7, "beta": 1e-3, "max_completion_length": 768}


def test_off_and_yes_are_strings_not_booleans(tmp_path):
    # YAML 1.1 would read `off` as False; the documented `spark.schedule=off` must work.
    assert config_from_mapping(apply_overrides(BASE, ["spark.schedule=off"])).spark.schedule == "off"
    path = tmp_path / "run.yaml"
    path.write_text("model: {path: m}\ndata: {train: t}\nspark: {schedule: off}\ngrpo: {bf16: true, tf32: False}\n")
    config = load_config(path)
    assert config.spark.schedule == "off"
    assert config.grpo == {"bf16": True, "tf32": False}


def test_extra_rewards_are_read_as_typed_entries(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(
        "model: {path: m}\ndata: {train: t}\n"
        "rewards:\n  verifiers: {code: mypackage.rewards:run_tests}\n  extra:\n"
        "    - {function: 'sparkrl.shaping:boxed_format', weight: 1, tasks: [policy, code]}\n"
        "    - {function: 'sparkrl.shaping:length_penalty', weight: 0.1}\n"
    )
    first, second = load_config(path).rewards.extra
    assert (first.function, first.weight, first.tasks) == ("sparkrl.shaping:boxed_format", 1.0, ("policy", "code"))
    assert (second.weight, second.tasks) == (0.1, None)  # no tasks: every task


GOOD = {"function": "sparkrl.shaping:boxed_format"}


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"function": "sparkrl.shaping:no_such_function"}, r"rewards\.extra\[1\]\.function: .*has no 'no_such_function'"),
        ({"function": "no_module_xyz:f"}, r"rewards\.extra\[1\]\.function: .*cannot import"),
        ({"function": "no_colon"}, r"rewards\.extra\[1\]\.function: .*'package\.module:function'"),
        ({**GOOD, "tasks": ["policy", "polcy"]}, r"rewards\.extra\[1\]\.tasks: unknown task 'polcy'"),
        ({**GOOD, "tasks": []}, r"rewards\.extra\[1\]: tasks: list at least one"),
        ({**GOOD, "tasks": "policy"}, r"rewards\.extra\[1\]\.tasks: expected a list"),
        ({**GOOD, "weight": float("inf")}, r"rewards\.extra\[1\]: weight must be a finite number"),
        ({**GOOD, "weight": "high"}, r"rewards\.extra\[1\]\.weight: expected float"),
        ({**GOOD, "wieght": 1}, r"rewards\.extra\[1\]: unknown key"),
    ],
)
def test_bad_extra_rewards_name_the_entry_and_key(entry, message):
    with pytest.raises(ConfigError, match=message):
        config_from_mapping({**BASE, "rewards": {"extra": [GOOD, entry]}})


def test_reward_weights_are_set_by_sparkrl():
    with pytest.raises(ConfigError, match=r"grpo\.reward_weights is set by sparkrl.*rewards\.extra"):
        config_from_mapping({**BASE, "grpo": {"reward_weights": [1.0, 0.5]}})


def test_self_reward_is_a_typed_section_and_unlabeled_data_needs_it():
    config = config_from_mapping(apply_overrides(BASE, ["spark.self_reward={mode: pairwise, max_pairs: 4}"]))
    assert (config.spark.self_reward.mode, config.spark.self_reward.max_pairs) == ("pairwise", 4)
    assert config.spark.self_reward.show == "answer" and config.spark.unlabeled_share == 0.5
    assert config_from_mapping(BASE).spark.self_reward is None
    # self-judged rewards without unlabeled rows are fine: the judge is then only monitored
    config_from_mapping(apply_overrides(BASE, ["spark.self_reward={}"]))
    with pytest.raises(ConfigError, match=r"data\.unlabeled 'u\.jsonl' has no answers.*spark\.self_reward"):
        config_from_mapping(apply_overrides(BASE, ["data.unlabeled=u.jsonl"]))
    config_from_mapping(apply_overrides(BASE, ["data.unlabeled=u.jsonl", "spark.self_reward={mode: majority}"]))


@pytest.mark.parametrize(
    "override, message",
    [
        ("spark.self_reward={mode: vote}", r"spark\.self_reward\.mode: expected one of"),
        ("spark.self_reward={samples: 0}", r"spark\.self_reward: samples must be at least 1"),
        ("spark.self_reward={min_agreement: 2}", r"spark\.self_reward: min_agreement must be in \[0, 1\]"),
        ("spark.self_reward={judge: me}", r"spark\.self_reward: unknown key\(s\) \['judge'\]"),
        ("spark.self_reward=pointwise", r"spark\.self_reward: expected a mapping"),
        ("spark.unlabeled_share=1.5", r"spark\.unlabeled_share must be in \[0, 1\]"),
        ("rewards.verifiers={open: m:f}", r"rewards\.verifiers\.open: 'open' is the task of unlabeled rows"),
    ],
)
def test_bad_self_reward_settings_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        config_from_mapping(apply_overrides(BASE, [override]))
