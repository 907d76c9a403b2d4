"""TRL's vLLM colocate path on CPU, with a stand-in engine: SPARK's rounds reach vLLM intact.

vLLM is not installed here (its wheels need CUDA), so `grpo.use_vllm: true, vllm_mode: colocate`
cannot run for real. TRL 1.16 keeps every vLLM call of GRPOTrainer in one class,
`trl.generation.vllm_generation.VLLMGeneration`, whose module imports `LLM` and `SamplingParams`
from vllm only when `is_vllm_available()`. The stand-in fills exactly those three names of that
module and nothing else: TRL's own `VLLMGeneration` builds the engine with its `LLM(...)`
arguments, pushes the weights through `llm_engine.model_executor.driver_worker.model_runner.model
.load_weights` before each round, and calls `llm.generate` with TRL's `{"prompt_token_ids",
"multi_modal_data"}` rows, which the stand-in records and answers like vLLM's `RequestOutput`s.

The stand-in answers from a script (the sum asked for when its sample index in the group is even,
one more when it is odd), so every policy group is half right and recycling has material.
What this checks: the rounds SPARK fills (recycled items first, then dataset prompts) reach the
engine as whole groups of `num_generations` identical prompts, in the order of the round log,
with each row's own image for a vision-language model; the engine's answers are what gets scored;
the weights are synced before every round (with LoRA: merged, under the base model's names).
What it cannot check: vLLM itself (how it reads token-id prompts and images, its sampling,
log-probabilities, memory use and speed); `bench/gpu_vllm_run.sh` is the GPU run for that, and
it has not been run by us.
"""

import json
import math
import os
import re
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
from PIL import Image

from sparkrl.config import PromptConfig, config_from_mapping
from sparkrl.rows import Example
from sparkrl.training import ROUND_LOG_DIR, example_row

GROUP = 4  # num_generations
SUM = re.compile(r"(\d+)\+(\d+)")


class StandInEngine:
    """Records what TRL's colocate path gives `vllm.LLM`, and answers its `generate` calls.

    `events` is the engine's timeline: ("sync", {name: tensor}) for each weight push (a copy of
    what was pushed) and ("generate", rows) for each generate call, rows as TRL built them. Its
    log-probabilities are NaN, which TRL reads as "not available" (importance ratio 1): the
    stand-in's answers are scripted, not sampled from the model.
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.llm_kwargs: list[dict] = []
        self.sampling: list[dict] = []
        self.events: list[tuple[str, object]] = []
        engine = self

        class Model:
            def load_weights(self, weights):
                if not engine.events or engine.events[-1][0] != "sync":
                    engine.events.append(("sync", {}))
                engine.events[-1][1].update((name, tensor.detach().clone()) for name, tensor in weights)

        class LLM:
            def __init__(self, **kwargs):
                engine.llm_kwargs.append(kwargs)
                runner = SimpleNamespace(model=Model())
                self.llm_engine = SimpleNamespace(
                    model_executor=SimpleNamespace(driver_worker=SimpleNamespace(model_runner=runner))
                )

            def reset_prefix_cache(self):
                pass

            def generate(self, rows, sampling_params, use_tqdm):
                assert sampling_params.n == 1  # colocate mode asks for one sample per row
                engine.events.append(("generate", list(rows)))
                return engine.answer(rows)

        def sampling_params(**kwargs):
            engine.sampling.append(kwargs)
            return SimpleNamespace(**kwargs)

        self.llm_class = LLM
        self.sampling_params = sampling_params

    def decode(self, ids):
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)

    def answer(self, rows):
        seen: Counter = Counter()
        outputs = []
        for row in rows:
            ids = tuple(row["prompt_token_ids"])
            index = seen[ids]  # the row's sample index in its group
            seen[ids] += 1
            a, b = SUM.findall(self.decode(ids))[-1]
            text = f"\\boxed{{{int(a) + int(b) + index % 2}}}"
            completion = self.tokenizer(text, add_special_tokens=False)["input_ids"] + [self.tokenizer.eos_token_id]
            logprobs = [{token: SimpleNamespace(logprob=math.nan, rank=1)} for token in completion]
            outputs.append(SimpleNamespace(
                prompt_token_ids=list(ids), outputs=[SimpleNamespace(token_ids=completion, logprobs=logprobs)]
            ))
        return outputs

    def generated(self):
        return [rows for kind, rows in self.events if kind == "generate"]

    def syncs(self):
        return [weights for kind, weights in self.events if kind == "sync"]


# Tiny models train fastest on one thread (the fixture is in conftest.py).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def standin(monkeypatch):
    """Install a StandInEngine as TRL's vLLM; `standin(tokenizer)` returns it. TRL's colocate
    set-up writes RANK, WORLD_SIZE, MASTER_ADDR, ... into os.environ; they are restored after."""
    import trl.generation.vllm_generation as vllm_generation

    def install(tokenizer):
        engine = StandInEngine(tokenizer)
        monkeypatch.setattr(vllm_generation, "is_vllm_available", lambda *a, **k: True)
        monkeypatch.setattr(vllm_generation, "LLM", engine.llm_class, raising=False)
        monkeypatch.setattr(vllm_generation, "SamplingParams", engine.sampling_params, raising=False)
        return engine

    with mock.patch.dict(os.environ):
        yield install


def _sums(n, seed):
    return [Example(f"What is {a}+{b}?", str(a + b)) for a, b in ((seed + 3 * i, i % 7) for i in range(n))]


def _config(model, train, out, lora=None):
    from sparkrl.tiny.templates import TINY_TEMPLATES

    config = config_from_mapping({
        "model": {"path": str(model), **({"lora": lora} if lora is not None else {})},
        "data": {"train": str(train)},
        "output_dir": str(out),
        "seed": 0,
        "prompt": {"suffix": ""},
        # mix: from the second round on, each round holds recycled items and dataset prompts
        "spark": {"schedule": "mix", "mix_share": 0.5, "policy_steps": 3},
        "grpo": {
            "num_generations": GROUP,
            "per_device_train_batch_size": 8 * GROUP,  # 8 prompt slots, one optimizer step per round
            "max_completion_length": 16,
            "learning_rate": 1e-3,
            "logging_steps": 1,
            "save_strategy": "no",
            "report_to": [],
            "use_cpu": True,
            "use_vllm": True,
            "vllm_mode": "colocate",
            "vllm_gpu_memory_utilization": 0.25,
        },
    })
    config.spark.recycling["templates"] = TINY_TEMPLATES
    return config


def _round_log(out):
    lines = (Path(out) / ROUND_LOG_DIR / "rank-0.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _groups(rows):
    """The rows of one generate call as groups; each group must hold one prompt GROUP times."""
    assert len(rows) % GROUP == 0
    groups = [rows[i : i + GROUP] for i in range(0, len(rows), GROUP)]
    for group in groups:
        assert all(row["prompt_token_ids"] == group[0]["prompt_token_ids"] for row in group)
    return [group[0] for group in groups]


def _rendered(tokenizer, item):
    """The prompt text TRL should have tokenized for a round-log item."""
    messages = example_row(Example.from_dict(json.loads(item)), PromptConfig(suffix=""))["prompt"]
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_filled_rounds_reach_the_vllm_engine_as_whole_groups_in_round_order(standin, tiny_model_dir, tmp_path, lora):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sparkrl.data import examples_to_jsonl
    from sparkrl.runs import run_training

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    engine = standin(tokenizer)
    examples_to_jsonl(_sums(32, seed=1), tmp_path / "train.jsonl")
    config = _config(tiny_model_dir, tmp_path / "train.jsonl", tmp_path / "run", lora={"r": 4} if lora else None)
    run_training(config)

    # TRL built one colocated engine on the run's model folder, with the run's settings
    [kwargs] = engine.llm_kwargs
    assert kwargs["model"] == str(tiny_model_dir) and kwargs["gpu_memory_utilization"] == 0.25
    assert kwargs["distributed_executor_backend"] == "external_launcher"
    assert {s["max_tokens"] for s in engine.sampling} == {16}

    rounds, calls = _round_log(tmp_path / "run"), engine.generated()
    assert len(calls) == len(rounds) == 3  # one generate call per round, all its rows at once
    assert [r["recycled"] for r in rounds] == [0, 4, 4]
    for record, rows in zip(rounds, calls):
        prompts = [engine.decode(row["prompt_token_ids"]) for row in _groups(rows)]
        assert prompts == [_rendered(tokenizer, item) for item in record["items"]]
    recycled_tasks = {task for r in rounds for task in r["tasks"][: r["recycled"]]}
    assert recycled_tasks <= {"pointwise", "pairwise", "reflection"} and len(recycled_tasks) >= 2
    assert all(task == "policy" for r in rounds for task in r["tasks"][r["recycled"] :])

    # before every round the engine got every weight of the model under its plain name (with
    # LoRA: the adapter merged in, no adapter tensors), first as loaded, then as trained
    assert [kind for kind, _ in engine.events] == ["sync", "generate"] * 3
    loaded = dict(AutoModelForCausalLM.from_pretrained(tiny_model_dir).named_parameters())
    first, *later = engine.syncs()
    assert all(weights.keys() == loaded.keys() for weights in engine.syncs())
    assert all(torch.equal(first[name], loaded[name]) for name in loaded)
    assert any(not torch.equal(later[-1][name], first[name]) for name in loaded)
    if lora:  # only the linear layers the adapter covers move ("all-linear" leaves out the output layer)
        untouched = [name for name in loaded if "norm" in name or "embed" in name or "lm_head" in name]
        assert untouched and all(torch.equal(later[-1][name], first[name]) for name in untouched)

    # what was scored is what the engine answered: half of each policy group right
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [m for m in metrics if "spark/policy_reward" in m]
    assert len(steps) == 3 and all(m["spark/policy_reward"] == pytest.approx(0.5) for m in steps)


@pytest.fixture(scope="module")
def tiny_vl_folder(tmp_path_factory):
    """An untrained tiny LLaVA (the engine is scripted, so no warm start) and two train sets of
    sums: `images.jsonl`, each row with its own solid-colour image, and `mixed.jsonl`, the same
    with every other row text-only."""
    from sparkrl.data import examples_to_jsonl
    from sparkrl.tiny_vl.model import build_tiny_vl_model, build_vl_processor

    folder = tmp_path_factory.mktemp("tiny-vl-vllm")
    processor = build_vl_processor()
    model = build_tiny_vl_model(processor, seed=0)
    model.save_pretrained(folder / "model")
    processor.save_pretrained(folder / "model")
    examples = []
    for i, example in enumerate(_sums(24, seed=2)):
        path = folder / f"image-{i}.png"
        Image.new("RGB", (28, 28), (10 * i, 255 - 10 * i, (37 * i) % 256)).save(path)
        examples.append(Example(example.question, example.answer, images=(str(path),)))
    examples_to_jsonl(examples, folder / "images.jsonl")
    mixed = [e if i % 2 == 0 else Example(e.question, e.answer) for i, e in enumerate(examples)]
    examples_to_jsonl(mixed, folder / "mixed.jsonl")
    return folder


def _check_image_rounds(engine, tokenizer, out):
    """Every row the engine got carries its round-log item's image (and a text-only item none),
    behind the same prompt text the item renders to."""
    rounds, calls = _round_log(out), engine.generated()
    assert len(calls) == len(rounds) == 3 and sum(r["recycled"] for r in rounds) > 0
    for record, rows in zip(rounds, calls):
        assert len(rows) == GROUP * len(record["items"])
        for first, item in zip(_groups(rows), record["items"]):
            example = Example.from_dict(json.loads(item))
            # the processor expands <image> into one run of image tokens per image
            text = re.sub(r"(<image>)+", "<image>", engine.decode(first["prompt_token_ids"]))
            expected = _rendered(tokenizer, item)
            # the tiny processor writes the image after the user turn's text (sparkrl.tiny_vl.model)
            assert text == (expected.replace("<eos><assistant>", "<image><eos><assistant>", 1) if example.images else expected)
        for index, row in enumerate(rows):
            example = Example.from_dict(json.loads(record["items"][index // GROUP]))
            if not example.images:
                assert "multi_modal_data" not in row
                continue
            [path] = example.images
            sent = row["multi_modal_data"]["image"]
            assert sent.convert("RGB").tobytes() == Image.open(path).convert("RGB").tobytes()


def _train_vl(standin, folder, data, out):
    import torch
    from transformers import AutoProcessor

    from sparkrl.runs import run_training

    torch.manual_seed(0)
    processor = AutoProcessor.from_pretrained(folder / "model")
    engine = standin(processor.tokenizer)
    run_training(_config(folder / "model", folder / data, out))
    return engine, processor.tokenizer


def test_image_rounds_reach_the_vllm_engine_with_each_rows_image(standin, tiny_vl_folder, tmp_path):
    engine, tokenizer = _train_vl(standin, tiny_vl_folder, "images.jsonl", tmp_path / "run")
    _check_image_rounds(engine, tokenizer, tmp_path / "run")


def test_mixed_text_and_image_rounds_reach_the_vllm_engine(standin, tiny_vl_folder, tmp_path):
    engine, tokenizer = _train_vl(standin, tiny_vl_folder, "mixed.jsonl", tmp_path / "run")
    _check_image_rounds(engine, tokenizer, tmp_path / "run")
