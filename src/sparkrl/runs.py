"""A training run from a validated `RunConfig`: load model and data, build the trainer, train.

Models and tokenizers load from local folders only (`local_files_only`), so a run never
downloads weights. The configuration actually used is written to `<output_dir>/config.yaml`
before training starts, and every logged step is appended to `<output_dir>/metrics.jsonl`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from sparkrl.config import ModelConfig, RunConfig
from sparkrl.errors import ConfigError
from sparkrl.schedule import optimizer_steps_per_round, round_budget


def build_grpo_args(config: RunConfig) -> Any:
    """TRL's GRPOConfig from the `grpo` section, with the run-level fields sparkrl owns."""
    from trl import GRPOConfig

    section = {**precision_defaults(config.grpo), **check_switches(GRPOConfig, config.grpo)}
    try:
        args = GRPOConfig(
            output_dir=config.output_dir,
            seed=config.seed,
            remove_unused_columns=False,
            # TRL's reward functions are the router, then rewards.extra in order (build_trainer).
            reward_weights=[1.0, *(entry.weight for entry in config.rewards.extra)],
            **section,
        )
    except TypeError as exc:
        raise ConfigError(f"grpo: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"grpo: {exc}") from None
    # The policy budget decides the length of the run (see StopAfterPolicySteps); max_steps is
    # the most optimizer steps it can take: alternate may add one recycled round per policy round.
    steps_per_round = optimizer_steps_per_round(args)
    args.max_steps = round_budget(config.spark.schedule, config.spark.policy_steps) * steps_per_round
    check_checkpoints_between_rounds(args, steps_per_round)
    return args


def precision_defaults(section: Mapping[str, Any], cuda: bool | None = None) -> dict[str, Any]:
    """`bf16: false` for a run on the CPU that does not set bf16 or fp16 itself.

    TRL's GRPOConfig turns bf16 mixed precision on by default, and on the CPU accelerate then
    runs every forward pass under bfloat16 autocast. CPUs without bfloat16 instructions (no
    AMX or AVX512-BF16) emulate it: the demo's rounds took several times as long
    (`bench/bench_grpo_setting.py --setting bf16 --values true false`), and the model's log-probabilities lose precision for nothing.
    A run that names bf16 or fp16 keeps its choice; so does any run with a GPU.
    """
    if "bf16" in section or "fp16" in section:
        return {}
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    return {"bf16": False} if section.get("use_cpu") or not cuda else {}


def check_switches(config_class: type, section: Mapping[str, Any]) -> dict[str, Any]:
    """Reject a string where a yes/no field of TRL's config is expected: the YAML loader reads
    only true/false as booleans (so that `schedule: off` stays a word), and TRL would take the
    string `no` as true."""
    kinds = {f.name: f.type for f in dataclasses.fields(config_class)}
    for key, value in section.items():
        kind = str(kinds.get(key, ""))
        if isinstance(value, str) and kind in ("bool", "<class 'bool'>", "bool | None", "Optional[bool]"):
            raise ConfigError(f"grpo.{key}: expected true or false, got {value!r}")
    return dict(section)


def check_checkpoints_between_rounds(grpo_args: Any, steps_per_round: int) -> None:
    """Checkpoints must fall on round boundaries.

    The SPARK state saved with a checkpoint (pool, deferred prompts, round counters) changes
    when a round is generated, before its optimizer steps run. A checkpoint taken inside a
    round would therefore resume with that round's recycled items already gone from the pool
    and its dataset prompts queued again. The steps per round depend on the number of
    processes, so the message names the count this check ran with.
    """
    if grpo_args.save_strategy in ("epoch", "best"):
        raise ConfigError(
            f"grpo.save_strategy {grpo_args.save_strategy!r} can save inside a round, which loses "
            "recycled items on resume; use 'steps' (with save_steps a multiple of the optimizer "
            "steps per round) or 'no'"
        )
    if grpo_args.save_strategy != "steps":
        return
    save_steps = grpo_args.save_steps
    # Trainer reads a save_steps below 1 as a share of max_steps, rounded up.
    interval = math.ceil(grpo_args.max_steps * save_steps) if save_steps < 1 else int(save_steps)
    if interval % steps_per_round == 0:
        return
    suggestion = max(1, round(interval / steps_per_round)) * steps_per_round
    raise ConfigError(
        f"grpo.save_steps ({save_steps}) must be a multiple of the optimizer steps per round, so that "
        f"checkpoints fall between rounds; e.g. grpo.save_steps={suggestion}. A round (one generation "
        f"batch) is {steps_per_round} optimizer step(s) here: grpo.steps_per_generation "
        f"{grpo_args.steps_per_generation} (grpo.generation_batch_size {grpo_args.generation_batch_size} / "
        f"(grpo.per_device_train_batch_size {grpo_args.per_device_train_batch_size} x "
        f"{grpo_args.world_size} process(es))) x grpo.num_iterations {grpo_args.num_iterations} / "
        f"grpo.gradient_accumulation_steps {grpo_args.gradient_accumulation_steps}"
    )


def check_paths(config: RunConfig) -> None:
    """The model folder and data files exist (checked before any model loads)."""
    if not Path(config.model.path).is_dir():
        raise ConfigError(f"model.path {config.model.path!r} is not a local folder; sparkrl never downloads weights")
    from sparkrl.models import is_adapter_folder

    if config.model.lora is not None and is_adapter_folder(config.model.path):
        raise ConfigError(
            f"model.path {config.model.path!r} is a LoRA adapter folder; a new adapter cannot be trained on top "
            "of it, so give the merged model instead (a LoRA run's final/ folder)"
        )
    for key, path in data_files(config):
        if not Path(path).exists():
            raise ConfigError(f"{key} {path!r}: file or folder not found")


def data_files(config: RunConfig) -> list[tuple[str, str]]:
    """(key, path) of every data file the run reads."""
    data = config.data
    files = (("data.train", data.train), ("data.eval", data.eval), ("data.unlabeled", data.unlabeled))
    return [(key, path) for key, path in files if path]


def label_rule(config: RunConfig, key: str) -> str:
    """How a data file's answers are read (`sparkrl.data.load_examples`): train rows without
    one are unlabeled prompts when self-judged rewards are on, evaluation rows always need one,
    and data.unlabeled's answers are never read."""
    from sparkrl.data import LABELS_IGNORED, LABELS_OPTIONAL, LABELS_REQUIRED

    if key == "data.unlabeled":
        return LABELS_IGNORED
    return LABELS_OPTIONAL if key == "data.train" and config.spark.self_reward is not None else LABELS_REQUIRED


def validate_run(config: RunConfig) -> Any:
    """Everything that can be checked without loading a model: the paths the run reads (first:
    no heavy import needed) and TRL's GRPOConfig (returned)."""
    check_paths(config)
    return build_grpo_args(config)


def build_trainer(config: RunConfig, model: Any = None, tokenizer: Any = None) -> Any:
    """Everything a run needs, wired together; `model`/`tokenizer` may be passed in directly."""
    from datasets import Dataset

    from sparkrl.data import DataConfig, load_examples
    from sparkrl.models import (
        freeze_parameters,
        load_model_and_tokenizer,
        lora_config,
        read_chat_template,
        set_chat_template,
        trainable_parameters,
    )
    from sparkrl.rewards import RewardRouter, extra_rewards
    from sparkrl.training import MetricsFile, SparkGRPOTrainer, example_row

    args = build_grpo_args(config)
    # Data before the model: a bad data file should fail in seconds, not after a model load.
    loader = DataConfig(**config.data.loader)
    loaded = {}
    for key, path in data_files(config):
        loaded[key] = load_examples(path, loader, labels=label_rule(config, key))
        if loaded[key].skipped:
            print(f"[sparkrl] skipped {len(loaded[key].skipped)} bad rows of {path}")
    rows = {key: [example_row(example, config.prompt) for example in found.examples] for key, found in loaded.items()}
    eval_dataset = Dataset.from_list(rows["data.eval"]) if "data.eval" in rows else None
    if model is None:
        model, tokenizer = load_model_and_tokenizer(
            config.model.path, config.model.dtype, config.model.trust_remote_code, config.prompt.chat_template
        )
    elif config.prompt.chat_template is not None:
        set_chat_template(tokenizer, read_chat_template(config.prompt.chat_template))
    if config.model.freeze:
        frozen = freeze_parameters(model, config.model.freeze)
        print(f"[sparkrl] model.freeze: {frozen} parameters frozen ({', '.join(config.model.freeze)})")
    peft_config = lora_config(config.model.lora) if config.model.lora is not None else None
    router = RewardRouter(timeout_s=config.rewards.timeout_s, extra=config.rewards.verifiers)
    extras = extra_rewards([(entry.function, entry.tasks) for entry in config.rewards.extra])
    trainer = SparkGRPOTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows["data.train"]),
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        spark=config.spark,
        prompt=config.prompt,
        router=router,
        extra_rewards=extras,
        unlabeled=rows.get("data.unlabeled", []),
        peft_config=peft_config,
    )
    if peft_config is not None:
        trainable, total = trainable_parameters(trainer.model)
        print(f"[sparkrl] LoRA: {trainable:,} of {total:,} parameters trained ({100 * trainable / total:.2f}%)")
    trainer.add_callback(MetricsFile(Path(config.output_dir) / "metrics.jsonl"))
    return trainer


def save_run_config(config: RunConfig) -> Path:
    """Write the configuration the run actually reads to `<output_dir>/config.yaml`."""
    folder = Path(config.output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(dataclasses.asdict(config), sort_keys=False))
    return path


def resolve_checkpoint(output_dir: str, resume: str | bool | None) -> str | None:
    """`True` -> the newest checkpoint in the run folder; a path -> itself; None/False -> none."""
    if not resume:
        return None
    if resume is True:
        from transformers.trainer_utils import get_last_checkpoint

        last = get_last_checkpoint(output_dir) if Path(output_dir).is_dir() else None
        if last is None:
            raise ConfigError(f"{output_dir}: no checkpoint-* folder to resume from")
        return last
    if not Path(resume).is_dir():
        raise ConfigError(f"{resume}: checkpoint folder not found")
    return str(resume)


def run_training(config: RunConfig, resume: str | bool | None = None, model: Any = None, tokenizer: Any = None) -> Any:
    """Train (or resume) a run; returns the trainer after training and saving the final model."""
    checkpoint = resolve_checkpoint(config.output_dir, resume)
    save_run_config(config)
    trainer = build_trainer(config, model=model, tokenizer=tokenizer)
    trainer.train(resume_from_checkpoint=checkpoint)
    save_final(trainer, Path(config.output_dir) / "final", config.model)
    return trainer


def save_final(trainer: Any, folder: Path, model_config: ModelConfig) -> None:
    """The run's `final/` folder: the trained model, loadable like any other.

    Under LoRA the adapter goes to `final/adapter` and the merged model to `final/`. In one
    process the adapter is merged in place (no second copy of the weights; the trainer's model
    is a plain model afterwards). Under DeepSpeed or FSDP the weights are sharded across
    processes, so the main process merges the saved adapter into a fresh load of the base.
    """
    from accelerate.utils import is_peft_model

    from sparkrl.models import ADAPTER_FOLDER, load_weights, merge_adapter, save_final_model

    processing, accelerator = trainer.processing_class, trainer.accelerator
    if not is_peft_model(accelerator.unwrap_model(trainer.model)):
        trainer.save_model(str(folder))
        if processing is not None and accelerator.is_main_process:
            processing.save_pretrained(str(folder))
        accelerator.wait_for_everyone()
        return
    trainer.save_model(str(folder / ADAPTER_FOLDER))
    if processing is not None and accelerator.is_main_process:
        processing.save_pretrained(str(folder / ADAPTER_FOLDER))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if trainer.is_deepspeed_enabled or trainer.is_fsdp_enabled:
            base = load_weights(model_config.path, model_config.dtype, model_config.trust_remote_code)
            merged = merge_adapter(base, folder / ADAPTER_FOLDER)
        else:
            merged = accelerator.unwrap_model(trainer.model).merge_and_unload()
        save_final_model(merged, processing, folder)
    accelerator.wait_for_everyone()
