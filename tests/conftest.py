"""Shared fixtures: a tiny untrained causal LM with a character tokenizer and a chat template,
a scripted generation backend, and the shared real-data files.

The tiny model generates on CPU in milliseconds; its outputs are noise, which is all that
plumbing tests (batching, padding, seeds, output files) need. The scripted backend answers
from a Python function, for tests that need to know what the model will say.

Real-data tests read the shared data folder: `$SPARKRL_SHARED_DATA` if set, else
`<repo>/../shared/data` (where CI checks it out beside the clone). A missing file skips the
test, except under CI (`CI` set), where it fails: there a skip would hide lost coverage.
"""

from __future__ import annotations

import os
import string
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[1]

SPECIALS = ("<pad>", "<eos>", "<unk>", "<user>", "<assistant>", "<system>")
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<' + message['role'] + '>' + message['content'] + '<eos>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<assistant>' }}{% endif %}"
)


def build_char_tokenizer():
    """One token per printable character, plus the special tokens above."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    characters = [c for c in string.printable if c not in "\r\x0b\x0c"]
    vocab = {token: i for i, token in enumerate([*SPECIALS, *characters])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        eos_token="<eos>",
        unk_token="<unk>",
        additional_special_tokens=["<user>", "<assistant>", "<system>"],
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_tiny_model(vocab_size: int, seed: int = 0):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=None,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny model + tokenizer folder, loadable with from_pretrained."""
    tokenizer = build_char_tokenizer()
    model = build_tiny_model(len(tokenizer))
    folder = tmp_path_factory.mktemp("tiny-model")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_and_tokenizer():
    """The same tiny model and tokenizer, in memory."""
    tokenizer = build_char_tokenizer()
    return build_tiny_model(len(tokenizer)), tokenizer


class ScriptedBackend:
    """A generation backend whose outputs come from `respond(user_text, sample_index, params)`
    (a str or a `Generation`); it records every call."""

    def __init__(self, respond: Callable, name: str = "scripted") -> None:
        self.respond = respond
        self.name = name
        self.calls: list[tuple[list[str], object]] = []

    def describe(self) -> dict:
        return {"backend": "scripted", "model": self.name}

    def generate(self, prompts: Sequence[list[dict]], params) -> list[list]:
        from sparkrl.inference.backends import Generation

        texts = [m[-1]["content"] for m in prompts]
        self.calls.append((texts, params))
        out = []
        for text in texts:
            row = [self.respond(text, i, params) for i in range(params.n)]
            out.append([g if isinstance(g, Generation) else Generation(g) for g in row])
        return out

    def prompts(self, prefix: str = "") -> list[str]:
        """Every user text sent so far that starts with `prefix`."""
        return [t for texts, _ in self.calls for t in texts if t.startswith(prefix)]


@pytest.fixture
def scripted() -> type[ScriptedBackend]:
    return ScriptedBackend


def shared_data_dir() -> Path:
    """The shared data folder: `$SPARKRL_SHARED_DATA`, else `<repo>/../shared/data`."""
    override = os.environ.get("SPARKRL_SHARED_DATA")
    return Path(override) if override else REPO.parent / "shared" / "data"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def shared_data() -> Callable[[str], Path]:
    """`shared_data(name)`: the path of a shared data file; skips the test if the file is
    absent, or fails it under CI."""

    def locate(name: str) -> Path:
        path = shared_data_dir() / name
        if not path.is_file():
            message = f"shared data file {path} is absent (set SPARKRL_SHARED_DATA to the folder that holds it)"
            if _in_ci():
                pytest.fail(message)
            pytest.skip(message)
        return path

    return locate


@pytest.fixture(scope="session")
def gsm8k_test(shared_data: Callable[[str], Path]) -> Path:
    """The GSM8K test split (1,319 rows of `question`, `answer` ending in `#### N`)."""
    return shared_data("gsm8k_test.jsonl")


@pytest.fixture(scope="session")
def gsm8k_solutions(shared_data: Callable[[str], Path]) -> Path:
    """GSM8K model solutions: per question, four models' solutions with correctness labels."""
    return shared_data("gsm8k_model_solutions.jsonl")


class FakeVLLM:
    """Stands in for the `vllm` package (not installed here): records what `vllm.LLM` and
    `vllm.SamplingParams` were given, and answers `LLM.chat` through `reply(messages)`."""

    def __init__(self, reply: Callable[[list[dict]], str]) -> None:
        self.reply = reply
        self.llm_kwargs: list[dict] = []
        self.sampling: list[dict] = []
        fake = self

        class LLM:
            def __init__(self, **kwargs: object) -> None:
                fake.llm_kwargs.append(kwargs)

            def chat(self, conversations: list, sampling: SimpleNamespace, use_tqdm: bool) -> list:
                return [
                    SimpleNamespace(outputs=[fake.completion(messages) for _ in range(sampling.n)])
                    for messages in conversations
                ]

        def sampling_params(**kwargs: object) -> SimpleNamespace:
            fake.sampling.append(kwargs)
            return SimpleNamespace(**kwargs)

        self.module = ModuleType("vllm")
        self.module.LLM = LLM
        self.module.SamplingParams = sampling_params

    def completion(self, messages: list[dict]) -> SimpleNamespace:
        # One token with its top log-probabilities, so that the conversion of both is exercised.
        step = {7: SimpleNamespace(decoded_token="Yes", logprob=-0.25),
                8: SimpleNamespace(decoded_token="No", logprob=-1.5)}
        return SimpleNamespace(text=self.reply(messages), token_ids=[7], logprobs=[step], finish_reason="stop")


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Callable[[Callable[[list[dict]], str]], FakeVLLM]:
    """Install a FakeVLLM as `vllm` in sys.modules for one test. The test runs in a folder
    where the model names the tests use (`m`, `some/model`, `org/model`) are local model
    folders, because the vLLM backend refuses any other name (vLLM would download it)."""

    def install(reply: Callable[[list[dict]], str]) -> FakeVLLM:
        fake = FakeVLLM(reply)
        monkeypatch.setitem(sys.modules, "vllm", fake.module)
        folder = tmp_path_factory.mktemp("vllm-cwd")
        for name in ("m", "some/model", "org/model"):
            (folder / name).mkdir(parents=True)
            (folder / name / "config.json").write_text("{}")
        monkeypatch.chdir(folder)
        return fake

    return install


@pytest.fixture(scope="session")
def real_model() -> Path:
    """The real pretrained chat model of the tests (SmolLM2-135M-Instruct, Llama architecture,
    its own tokenizer and chat template), converted at set-up time by scripts/real_model.py
    into `.cache/models` (`$SPARKRL_REAL_MODEL` overrides the folder). Absent, the test is
    skipped, except under CI, where it fails."""
    override = os.environ.get("SPARKRL_REAL_MODEL")
    folder = Path(override) if override else REPO / ".cache" / "models" / "smollm2-135m-instruct"
    if not (folder / "config.json").is_file():
        message = f"real model folder {folder} is absent; run python scripts/real_model.py (scripts/test.sh does)"
        if _in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return folder


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a test module, restored after it: tiny models train fastest on one
    thread (five times faster than two on a busy 2-core machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
