"""Loading and saving models: local folders only, full models, LoRA adapters, chat templates.

The one place that turns a folder into a model and what prepares its inputs, used by
training, evaluation and the demos. Every load reads local files only (`local_files_only`):
a mistyped path is an error here, never a download from a hub.

A folder may hold
- a full model (its `config.json`): a text model comes with its tokenizer, a vision-language
  model (its config has a `vision_config`) with its processor, which TRL takes as
  `processing_class` to switch to its vision-language path;
- a LoRA adapter (its `adapter_config.json`, no `config.json`): the base model named in the
  adapter config (a local folder) is loaded and the adapter merged into it, so evaluation and
  further training see a plain model.

Chat templates: a base model without one (RL from a pretrained base, as in "zero" recipes)
takes a template file from the user (`prompt.chat_template` in training, `--chat-template` in
evaluation); it is set on the tokenizer, so policy and recycled prompts render alike and the
trained model is saved with it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparkrl.errors import ConfigError

if TYPE_CHECKING:
    from sparkrl.config import LoraConfig as LoraSection

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_FOLDER = "adapter"  # beside the merged weights in a LoRA run's final/ folder
_DTYPES = ("auto", "float32", "bfloat16", "float16")


def is_vision_language(config: Any) -> bool:
    """Whether a model config describes a vision-language model (it has a vision tower)."""
    return getattr(config, "vision_config", None) is not None


def is_adapter_folder(path: str | Path) -> bool:
    folder = Path(path)
    return (folder / ADAPTER_CONFIG).is_file() and not (folder / "config.json").is_file()


def adapter_base(path: str | Path) -> str:
    """The base model folder an adapter was trained on, from its adapter config."""
    config_path = Path(path) / ADAPTER_CONFIG
    try:
        base = json.loads(config_path.read_text()).get("base_model_name_or_path")
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"{config_path}: cannot read the adapter config ({err})") from None
    if not base or not Path(base).is_dir():
        raise ConfigError(
            f"{config_path}: base_model_name_or_path {base!r} is not a local folder; sparkrl never "
            "downloads weights (edit it to point at the base model's folder)"
        )
    return str(base)


def read_chat_template(path: str | Path) -> str:
    """The text of a Jinja chat template file."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ConfigError(f"chat template file {str(path)!r}: cannot read it ({err.strerror or err})") from None
    if "{" not in text:
        raise ConfigError(f"chat template file {str(path)!r}: not a Jinja chat template (no {{ }} or {{% %}} in it)")
    return text


def load_model_and_tokenizer(
    path: str | Path,
    dtype: str = "auto",
    trust_remote_code: bool = False,
    chat_template: str | Path | None = None,
) -> tuple[Any, Any]:
    """A model and its tokenizer (or processor) from a local folder; an adapter folder is merged
    into its base. `chat_template` (a file) replaces or supplies the tokenizer's template."""
    folder = local_model_folder(path)
    # The tokenizer first: a missing chat template fails in a second, not after the weights load.
    processing = load_tokenizer(folder, trust_remote_code, chat_template)
    if is_adapter_folder(folder):
        return merge_adapter(load_weights(adapter_base(folder), dtype, trust_remote_code), folder), processing
    return load_weights(folder, dtype, trust_remote_code), processing


def load_weights(path: str | Path, dtype: str = "auto", trust_remote_code: bool = False) -> Any:
    """The model of a local model folder, without its tokenizer."""
    from transformers import AutoConfig, AutoModelForCausalLM

    folder = local_model_folder(path)
    options = {"local_files_only": True, "trust_remote_code": trust_remote_code}
    try:
        config = AutoConfig.from_pretrained(folder, **options)
        model_class = _vision_language_class(folder, config) if is_vision_language(config) else AutoModelForCausalLM
        return model_class.from_pretrained(folder, dtype=_torch_dtype(dtype), **options)
    except ConfigError:
        raise
    except (OSError, ValueError) as err:
        raise ConfigError(f"{folder}: cannot load the model ({' '.join(str(err).split())})") from None


def load_tokenizer(
    path: str | Path,
    trust_remote_code: bool = False,
    chat_template: str | Path | None = None,
    vision: bool | None = None,
) -> Any:
    """The tokenizer of a text model, or the processor of a vision-language model, with a chat
    template: the given file's, else the folder's own; neither is an error naming both fixes.
    An adapter folder's own tokenizer is used when it has one (a run saves it there, with the
    run's chat template), else its base model's."""
    from transformers import AutoConfig, AutoProcessor, AutoTokenizer

    folder = local_model_folder(path)
    if is_adapter_folder(folder) and not (folder / "tokenizer_config.json").is_file():
        folder = Path(adapter_base(folder))
    options = {"local_files_only": True, "trust_remote_code": trust_remote_code}
    try:
        if vision is None:
            config_folder = Path(adapter_base(folder)) if is_adapter_folder(folder) else folder
            vision = is_vision_language(AutoConfig.from_pretrained(config_folder, **options))
        if vision:
            processing = AutoProcessor.from_pretrained(folder, **options)
            tokenizer = getattr(processing, "tokenizer", None)
        else:
            processing = tokenizer = AutoTokenizer.from_pretrained(folder, **options)
    except ConfigError:
        raise
    except (OSError, ValueError, TypeError) as err:
        kind = "processor" if vision else "tokenizer"
        raise ConfigError(f"{folder}: cannot load the {kind} ({' '.join(str(err).split())})") from None
    if vision and (tokenizer is None or getattr(processing, "image_processor", None) is None):
        raise ConfigError(f"{folder}: the processor of a vision-language model needs a tokenizer and an image processor")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if chat_template is not None:
        set_chat_template(processing, read_chat_template(chat_template))
    if not processing.chat_template:
        raise ConfigError(
            f"{folder}: the tokenizer has no chat template (a base model?); give one as a Jinja file: "
            "prompt.chat_template: FILE.jinja for sparkrl train, --chat-template FILE.jinja for sparkrl eval"
        )
    return processing


def set_chat_template(processing: Any, text: str) -> None:
    """Give a tokenizer, or a processor and its tokenizer, the same chat template."""
    processing.chat_template = text
    tokenizer = getattr(processing, "tokenizer", None)
    if tokenizer is not None:
        tokenizer.chat_template = text


def lora_config(section: LoraSection) -> Any:
    """PEFT's LoraConfig for a causal language model from the `model.lora` section."""
    from peft import LoraConfig, TaskType

    target = section.target_modules
    return LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=section.r,
        lora_alpha=section.alpha,
        lora_dropout=section.dropout,
        target_modules=target if isinstance(target, str) else list(target),
        modules_to_save=list(section.modules_to_save) or None,
    )


def trainable_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter elements."""
    total = trainable = 0
    for parameter in model.parameters():
        total += parameter.numel()
        trainable += parameter.numel() if parameter.requires_grad else 0
    return trainable, total


def save_final_model(model: Any, processing: Any, folder: str | Path) -> Path:
    """Save a model (a merged LoRA model included) and its tokenizer or processor where
    `load_model_and_tokenizer` reads them back."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    if processing is not None:
        processing.save_pretrained(folder)
    return folder


def freeze_parameters(model: Any, prefixes: Sequence[str]) -> int:
    """Stop gradients for every parameter whose name starts with one of `prefixes`; returns
    how many parameters (elements) were frozen. A prefix that names nothing is an error, so a
    typo cannot silently train the part it meant to freeze."""
    names = [name for name, _ in model.named_parameters()]
    for prefix in prefixes:
        if not any(name.startswith(prefix) for name in names):
            tops = sorted({name.rsplit(".", 2)[0] for name in names})[:12]
            raise ConfigError(f"model.freeze: no parameter name starts with {prefix!r}; some modules are {tops}")
    frozen = 0
    for name, parameter in model.named_parameters():
        if name.startswith(tuple(prefixes)):
            parameter.requires_grad_(False)
            frozen += parameter.numel()
    return frozen


def merge_adapter(model: Any, folder: str | Path) -> Any:
    """A model with the adapter in `folder` merged into its weights."""
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(folder), local_files_only=True).merge_and_unload()


def local_model_folder(path: str | Path) -> Path:
    folder = Path(path)
    if not folder.is_dir():
        raise ConfigError(f"model folder {str(path)!r} not found; sparkrl reads local folders only and never downloads weights")
    if not (folder / "config.json").is_file() and not (folder / ADAPTER_CONFIG).is_file():
        raise ConfigError(f"{folder}: neither a model (config.json) nor a LoRA adapter (adapter_config.json)")
    # Absolute, so that an adapter trained on it records a base path that works from anywhere.
    return folder.resolve()


def _torch_dtype(dtype: str) -> Any:
    if dtype not in _DTYPES:
        raise ConfigError(f"model dtype {dtype!r}: expected one of {_DTYPES}")
    if dtype == "auto":
        return "auto"
    import torch

    return getattr(torch, dtype)


def _vision_language_class(folder: Path, config: Any) -> Any:
    import transformers
    from transformers import AutoModelForImageTextToText

    if type(config) in AutoModelForImageTextToText._model_mapping:
        return AutoModelForImageTextToText
    # A vision-language class that the auto mapping does not list: the one the config names.
    names = [n for n in (getattr(config, "architectures", None) or []) if hasattr(transformers, n)]
    if not names:
        raise ConfigError(f"{folder}: vision-language config names no model class transformers knows")
    return getattr(transformers, names[0])
