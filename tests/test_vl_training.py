"""Training with images: rows carry paths, TRL gets PIL images, recycled items keep their images.

The acceptance test trains the warm-started tiny vision-language model (sparkrl.tiny_vl) for a
few SPARK rounds on CPU and spies on what reaches TRL.
"""

import json
from pathlib import Path

import pytest
from PIL import Image

from sparkrl.config import PromptConfig, config_from_mapping
from sparkrl.data import load_examples
from sparkrl.rows import Example
from sparkrl.training import ImageError, describe_row, example_row, with_images


def _png(path, colour):
    Image.new("RGB", (6, 4), colour).save(path)
    return str(path)


def _row(example):
    return example_row(example, PromptConfig(suffix=""))


def test_with_images_opens_paths_in_order_and_gives_text_rows_an_empty_list(tmp_path):
    red, blue = _png(tmp_path / "r.png", (255, 0, 0)), _png(tmp_path / "b.png", (0, 0, 255))
    rows = [_row(Example("q", "1", images=(blue, red))), _row(Example("text only", "2"))]
    out = with_images(rows, vision=True)
    assert [image.getpixel((0, 0)) for image in out[0]["images"]] == [(0, 0, 255), (255, 0, 0)]
    assert out[1]["images"] == []
    assert "images" not in rows[0]  # the caller's rows (round state) keep paths only
    assert with_images(rows[1:], vision=False) == rows[1:]


def test_image_rows_need_a_vision_language_model(tmp_path):
    row = _row(Example("q", "1", images=(_png(tmp_path / "r.png", "red"),), source={"file": "train.jsonl", "row": 4}))
    with pytest.raises(ImageError, match=r"train.jsonl, row 4: .*not a processor"):
        with_images([row], vision=False)


def test_missing_or_corrupt_image_names_file_row_and_field(tmp_path):
    gone = tmp_path / "gone.png"
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG this is not an image")
    source = {"file": "data/train.jsonl", "row": 7}
    with pytest.raises(ImageError, match=r"data/train.jsonl, row 7, field images: cannot open image .*gone.png"):
        with_images([_row(Example("q", "1", images=(str(gone),), source=source))], vision=True)
    recycled = Example("judge", "Yes", images=(str(broken),), task="pointwise",
                       source={"group": 0, "group_source": source})
    with pytest.raises(ImageError, match=r"recycled pointwise item from data/train.jsonl, row 7.*broken.png"):
        with_images([_row(recycled)], vision=True)


def test_describe_row_without_provenance():
    assert describe_row(Example("q", "1")) == "unknown file, row ?"


# ---------------------------------------------------------------------------------------
# Real training of the tiny vision-language model (CPU).


@pytest.fixture(scope="module")
def vl_run_files(tmp_path_factory):
    """A briefly warm-started tiny LLaVA folder and an image train set (about 10 s)."""
    import torch

    from sparkrl.tiny.warmstart import WarmStartConfig, WarmStartData
    from sparkrl.tiny_vl.model import build_tiny_vl_model, build_vl_processor
    from sparkrl.tiny_vl.task import ShapeTaskConfig, write_dataset
    from sparkrl.tiny_vl.warmstart import build_image_pairs, warm_start_vl

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("tiny-vl")
    task = ShapeTaskConfig()
    processor = build_vl_processor()
    model = build_tiny_vl_model(processor, seed=0)
    pairs = build_image_pairs(task, WarmStartData(policy=300, pointwise=100, pairwise=100, reflection=100), seed=0)
    warm_start_vl(model, processor, pairs, WarmStartConfig(steps=100, batch_size=16), cell=task.cell, seed=0, progress=None)
    model.save_pretrained(folder / "model")
    processor.save_pretrained(folder / "model")
    write_dataset(task, "train", 48, seed=1, folder=folder / "data")
    yield folder
    torch.set_num_threads(threads)


def _config(folder, out, train, **spark):
    from sparkrl.tiny.templates import TINY_TEMPLATES

    config = config_from_mapping({
        "model": {"path": str(folder / "model")},
        "data": {"train": str(train)},
        "output_dir": str(out),
        "seed": 0,
        "prompt": {"suffix": ""},
        "spark": {"schedule": "alternate", "policy_steps": 4, **spark},
        "grpo": {
            "num_generations": 4,
            "per_device_train_batch_size": 32,
            "max_completion_length": 24,
            "learning_rate": 2e-4,
            "logging_steps": 1,
            "save_steps": 1,
            "report_to": [],
            "use_cpu": True,
        },
    })
    config.spark.recycling["templates"] = TINY_TEMPLATES
    return config


class Spy:
    """Records the rows TRL's `_generate_and_score_completions` receives and the prompts its
    generation tokenizes, then lets TRL carry on."""

    def __init__(self, monkeypatch):
        from trl import GRPOTrainer

        self.rows, self.prompts = [], []
        score, tokenize = GRPOTrainer._generate_and_score_completions, GRPOTrainer._tokenize_prompts

        def spy_score(trainer, inputs):
            self.rows += inputs
            return score(trainer, inputs)

        def spy_tokenize(trainer, prompts):
            self.prompts += prompts
            return tokenize(trainer, prompts)

        monkeypatch.setattr(GRPOTrainer, "_generate_and_score_completions", spy_score)
        monkeypatch.setattr(GRPOTrainer, "_tokenize_prompts", spy_tokenize)


def _pixels(image):
    return image.convert("RGB").tobytes()


def test_recycled_judge_and_reflection_items_carry_their_images_into_generation(vl_run_files, tmp_path, monkeypatch):
    from sparkrl.runs import run_training

    spy = Spy(monkeypatch)
    train = vl_run_files / "data" / "train.jsonl"
    run_training(_config(vl_run_files, tmp_path / "run", train))

    dataset = load_examples(train).examples
    recycled = [row for row in spy.rows if row["task"] != "policy"]
    assert {row["task"] for row in recycled} == {"pointwise", "pairwise", "reflection"}
    for row in recycled:
        example = Example.from_dict(json.loads(row["example"]))
        origin = dataset[example.source["group_source"]["row"] - 1]  # rows are numbered from 1
        assert example.images == origin.images
        assert [_pixels(image) for image in row["images"]] == [_pixels(Image.open(p)) for p in origin.images]
    # the boards differ, so matching each row to its own question's image is a real check
    assert len({_pixels(row["images"][0]) for row in recycled}) > 3

    # what generation tokenized: every prompt, recycled ones included, holds its row's image
    assert len(spy.prompts) == len(spy.rows)
    for prompt, row in zip(spy.prompts, spy.rows):
        parts = prompt[-1]["content"]
        assert [part["type"] for part in parts] == ["image", "text"]
        assert _pixels(parts[0]["image"]) == _pixels(row["images"][0])

    # checkpoints hold paths, not pixels (after the first policy round the pool is full)
    state = json.loads((tmp_path / "run" / "checkpoint-1" / "sparkrl_state.json").read_text())
    assert state["pool"] and all(Path(p).is_file() for item in state["pool"] for p in item["images"])


def test_mixed_text_and_image_rows_train_together(vl_run_files, tmp_path, monkeypatch):
    from sparkrl.data import examples_to_jsonl
    from sparkrl.runs import run_training

    spy = Spy(monkeypatch)
    images = load_examples(vl_run_files / "data" / "train.jsonl").examples[:16]
    texts = [Example(f"{a}+{a}", str(2 * a)) for a in range(1, 17)]
    mixed = tmp_path / "mixed.jsonl"
    examples_to_jsonl([e for pair in zip(images, texts) for e in pair], mixed)
    run_training(_config(vl_run_files, tmp_path / "run", mixed, policy_steps=2, schedule="mix"))
    counts = {len(row["images"]) for row in spy.rows}
    assert counts == {0, 1}
    assert (tmp_path / "run" / "final" / "processor_config.json").exists()


def test_load_model_and_tokenizer_gives_a_vision_language_model_its_processor(vl_run_files, tmp_path):
    from transformers import LlavaForConditionalGeneration, ProcessorMixin

    from sparkrl.config import ConfigError
    from sparkrl.models import load_model_and_tokenizer

    model, processor = load_model_and_tokenizer(str(vl_run_files / "model"))
    assert isinstance(model, LlavaForConditionalGeneration) and isinstance(processor, ProcessorMixin)
    assert processor.tokenizer.pad_token == "<pad>"
    with pytest.raises(ConfigError, match="not found; sparkrl reads local folders only"):
        load_model_and_tokenizer(str(tmp_path / "nowhere"))
    broken = tmp_path / "no-processor"
    broken.mkdir()
    (broken / "config.json").write_text((vl_run_files / "model" / "config.json").read_text())
    for name in ("model.safetensors", "generation_config.json"):
        (broken / name).write_bytes((vl_run_files / "model" / name).read_bytes())
    with pytest.raises(ConfigError, match="processor"):
        load_model_and_tokenizer(str(broken))
