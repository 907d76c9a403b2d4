"""Typed, validated configuration of a training run (`sparkrl train --config FILE.yaml`).

One small dataclass per concern. Everything is checked before any model is loaded: unknown
keys, wrong types and impossible combinations raise `ConfigError` naming the file and the key.
The `grpo` section is passed to TRL's `GRPOConfig` unchanged (any of its fields), so TRL's own
validation applies to it too. Overrides from the command line use dotted keys
(`spark.schedule=mix`, `grpo.learning_rate=1e-6`) with YAML values.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from sparkrl.errors import ConfigError
from sparkrl.rows import RECYCLED_TASKS, TASK_OPEN, TASK_POLICY
from sparkrl.schedule import SCHEDULES
from sparkrl.self_reward import SelfRewardConfig

# Our wording of the answer-format instruction appended to policy prompts.
DEFAULT_PROMPT_SUFFIX = "Think it through step by step, then state the final answer inside \\boxed{}."


class _YamlLoader(yaml.SafeLoader):
    """YAML 1.1 reads `1e-6` (no dot) as a string; learning rates are written that way, so
    numbers in scientific notation are resolved as floats."""


# YAML 1.1 also reads yes/no/on/off as booleans, so `spark.schedule: off` (or the override
# `spark.schedule=off`) would arrive as False; only true/false are booleans here (YAML 1.2).
_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*)?(?:\.\d*)?[eE][-+]?\d+$|^[-+]?\d[\d_]*\.\d*$|^[-+]?\.\d+$"),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_YamlLoader)  # noqa: S506 - a SafeLoader subclass


def _names(value: Any, key: str) -> tuple[str, ...]:
    """A YAML list of non-empty strings as a tuple (frozen configs hold no lists)."""
    if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{key}: expected a list of names, got {value!r}")
    return tuple(value)


@dataclass(frozen=True)
class LoraConfig:
    """LoRA adapters trained in place of the full weights (passed to TRL as `peft_config`).

    The KL reference is then the base model with the adapter disabled, as TRL does, so no
    second copy of the model is held. Field names follow the usual LoRA vocabulary; `alpha`
    is PEFT's `lora_alpha`.
    """

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | tuple[str, ...] = "all-linear"  # PEFT's word for every linear layer but the output
    modules_to_save: tuple[str, ...] = ()  # modules trained in full beside the adapter (e.g. lm_head)

    def __post_init__(self) -> None:
        if self.r < 1:
            raise ConfigError(f"model.lora.r must be at least 1, got {self.r}")
        if self.alpha <= 0:
            raise ConfigError(f"model.lora.alpha must be positive, got {self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.lora.dropout must be in [0, 1), got {self.dropout}")
        if not isinstance(self.target_modules, str):
            object.__setattr__(self, "target_modules", _names(self.target_modules, "model.lora.target_modules"))
        elif not self.target_modules:
            raise ConfigError("model.lora.target_modules: expected 'all-linear' or a list of module names")
        object.__setattr__(self, "modules_to_save", _names(self.modules_to_save, "model.lora.modules_to_save"))


@dataclass(frozen=True)
class ModelConfig:
    path: str = ""  # a local folder (Hugging Face format) or a LoRA adapter folder; nothing is downloaded
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    trust_remote_code: bool = False
    # Parameter-name prefixes kept frozen during RL (e.g. `model.vision_tower` to train only the
    # language side of a vision-language model, a common choice for VLM RL).
    freeze: tuple[str, ...] = ()
    lora: LoraConfig | None = None

    def __post_init__(self) -> None:
        if not self.path:
            raise ConfigError("model.path is required: a local model folder")
        object.__setattr__(self, "freeze", _names(self.freeze, "model.freeze"))
        if self.freeze and self.lora is not None:
            raise ConfigError("model.freeze and model.lora together: LoRA already freezes every base weight; "
                              "choose the trained layers with model.lora.target_modules")


@dataclass(frozen=True)
class DataSection:
    train: str = ""  # JSONL, JSON, Parquet file or saved dataset folder
    eval: str | None = None
    # Prompts without answers, trained with self-judged rewards (spark.self_reward) in a share
    # of each round's dataset slots (spark.unlabeled_share); any answers in it are dropped.
    unlabeled: str | None = None
    loader: dict[str, Any] = field(default_factory=dict)  # fields of sparkrl.data.DataConfig

    def __post_init__(self) -> None:
        if not self.train:
            raise ConfigError("data.train is required: a JSONL, JSON, Parquet file or saved dataset folder")


@dataclass(frozen=True)
class PromptConfig:
    suffix: str = DEFAULT_PROMPT_SUFFIX  # appended to policy questions, as in the authors' runs
    system: str | None = None
    # A Jinja chat template file for a model without one (a base model); used for policy and
    # recycled prompts alike and saved with the trained model.
    chat_template: str | None = None


@dataclass(frozen=True)
class SparkConfig:
    schedule: Literal["alternate", "mix", "off"] = "alternate"
    mix_share: float = 0.5  # share of prompt slots given to recycled items under `mix`
    policy_steps: int = 100  # rounds trained on dataset prompts (the budget compared across runs)
    recycle_recycled: bool = False  # also recycle rollouts of recycled items (authors: no)
    pool_capacity: int | None = None  # most recycled items kept waiting; oldest dropped beyond
    recycling: dict[str, Any] = field(default_factory=dict)  # fields of sparkrl.recycling.RecyclingConfig
    # Rewards for unlabeled rows from the model's own judgement (None: every row needs an answer).
    self_reward: SelfRewardConfig | None = None
    unlabeled_share: float = 0.5  # share of each round's dataset slots given to data.unlabeled prompts

    def __post_init__(self) -> None:
        if not 0.0 <= self.unlabeled_share <= 1.0:
            raise ConfigError(f"spark.unlabeled_share must be in [0, 1], got {self.unlabeled_share}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"spark.schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not 0.0 < self.mix_share < 1.0:
            raise ConfigError(f"spark.mix_share must be strictly between 0 and 1, got {self.mix_share}")
        if self.policy_steps < 1:
            raise ConfigError(f"spark.policy_steps must be at least 1, got {self.policy_steps}")
        if self.pool_capacity is not None and self.pool_capacity < 1:
            raise ConfigError(f"spark.pool_capacity must be at least 1 or null, got {self.pool_capacity}")


@dataclass(frozen=True)
class ExtraRewardConfig:
    """A reward function beside the verifiers: TRL adds `weight` x its value to the reward of
    rows of `tasks`. The recycling never sees it (judge labels come from correctness only)."""

    function: str = ""  # 'package.module:function', a TRL reward function
    weight: float = 1.0
    # Every task by default, as TRL applies a reward function to every row; [policy] shapes
    # only the dataset prompts, leaving the recycled items' rewards pure correctness.
    tasks: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not self.function:
            raise ConfigError("function is required: 'package.module:function'")
        if not math.isfinite(self.weight):
            raise ConfigError(f"weight must be a finite number, got {self.weight}")
        if self.tasks is not None and not self.tasks:
            raise ConfigError("tasks: list at least one task, or leave the key out for every task")


@dataclass(frozen=True)
class RewardConfig:
    timeout_s: float = 5.0  # per-answer limit of the math verifier
    verifiers: dict[str, str] = field(default_factory=dict)  # task -> 'module:function'
    extra: tuple[ExtraRewardConfig, ...] = ()  # reward functions added to the verifiers' reward

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ConfigError(f"rewards.timeout_s must be positive, got {self.timeout_s}")
        if TASK_OPEN in self.verifiers:
            raise ConfigError(f"rewards.verifiers.{TASK_OPEN}: '{TASK_OPEN}' is the task of unlabeled rows, "
                              "rewarded by spark.self_reward; name your task otherwise")
        known = sorted({TASK_POLICY, TASK_OPEN, *RECYCLED_TASKS, *self.verifiers})
        for index, entry in enumerate(self.extra):
            unknown = [task for task in entry.tasks or () if task not in known]
            if unknown:
                raise ConfigError(
                    f"rewards.extra[{index}].tasks: unknown task {unknown[0]!r}; known tasks: {known} "
                    "(a new task needs its verifier under rewards.verifiers)"
                )


@dataclass(frozen=True)
class RunConfig:
    model: ModelConfig
    data: DataSection
    output_dir: str = "runs/spark"
    seed: int = 0
    prompt: PromptConfig = field(default_factory=PromptConfig)
    spark: SparkConfig = field(default_factory=SparkConfig)
    rewards: RewardConfig = field(default_factory=RewardConfig)
    grpo: dict[str, Any] = field(default_factory=dict)  # any TRL GRPOConfig field

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_type(value: Any, annotation: Any, where: str) -> Any:
    """Check (and gently coerce int -> float) a YAML value against a field annotation."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        if value not in typing.get_args(annotation):
            raise ConfigError(f"{where}: expected one of {typing.get_args(annotation)}, got {value!r}")
        return value
    if origin in (types.UnionType, typing.Union):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _check_type(value, option, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if origin is dict or annotation is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if origin in (tuple, list):  # tuple[X, ...] or list[X]: a YAML list, each item checked as X
        if isinstance(value, str | Mapping) or not isinstance(value, Sequence):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item_type = typing.get_args(annotation)[0]
        items = [_check_type(item, item_type, f"{where}[{i}]") for i, item in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation in (int, float, str, bool):
        if not isinstance(value, annotation) or (annotation is int and isinstance(value, bool)):
            raise ConfigError(f"{where}: expected {annotation.__name__}, got {value!r}")
        return value
    if dataclasses.is_dataclass(annotation):
        return _build(annotation, value, where)
    return value


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of {cls.__name__} fields, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(names)}")
    values = {name: _check_type(value, hints[name], f"{where}.{name}") for name, value in data.items()}
    try:
        return cls(**values)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply `dotted.key=value` overrides (values parsed as YAML) to a nested mapping."""
    result = _deep_copy(data)
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {override!r} must look like section.key=value")
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {override!r}: {part!r} is not a section")
            node = child
        node[parts[-1]] = parse_yaml(raw) if raw else ""
    return result


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}


def config_from_mapping(data: Mapping[str, Any], where: str = "config") -> RunConfig:
    """Build and validate a RunConfig, including the recycling and TRL sections."""
    config = _build(RunConfig, data, where)
    validate_sections(config, where)
    return config


def validate_sections(config: RunConfig, where: str) -> None:
    """Validate the sections that are passed on to other libraries, before any model loads."""
    from sparkrl.data import DataConfig
    from sparkrl.recycling import RecyclingConfig

    try:
        DataConfig(**config.data.loader)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: data.loader: {exc}") from None
    try:
        RecyclingConfig(**config.spark.recycling)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: spark.recycling: {exc}") from None
    reserved = {"output_dir", "seed", "max_steps", "remove_unused_columns"} & set(config.grpo)
    if reserved:
        raise ConfigError(
            f"{where}: grpo.{sorted(reserved)[0]} is set by sparkrl; use the top-level "
            "output_dir / seed, and spark.policy_steps for the length of the run"
        )
    if "reward_weights" in config.grpo:
        raise ConfigError(
            f"{where}: grpo.reward_weights is set by sparkrl: the verifiers' reward has weight 1, "
            "and each reward function under rewards.extra has its own `weight`"
        )
    validate_extra_rewards(config, where)
    if config.data.unlabeled and config.spark.self_reward is None:
        raise ConfigError(
            f"{where}: data.unlabeled {config.data.unlabeled!r} has no answers to verify; set spark.self_reward "
            "(e.g. spark.self_reward={mode: pointwise}) to train its prompts with self-judged rewards"
        )


def validate_extra_rewards(config: RunConfig, where: str) -> None:
    """Every `rewards.extra` function can be imported (a typo fails here, not after the model loads)."""
    from sparkrl.rewards import import_function

    for index, entry in enumerate(config.rewards.extra):
        try:
            import_function(entry.function, kind="reward function")
        except ValueError as exc:
            raise ConfigError(f"{where}: rewards.extra[{index}].function: {exc}") from None


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> RunConfig:
    """Read a YAML configuration file, apply overrides and validate everything."""
    path = Path(path)
    try:
        data = parse_yaml(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return config_from_mapping(apply_overrides(dict(data), overrides), where=str(path))
