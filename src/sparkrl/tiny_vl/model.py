"""The tiny vision-language model: a stock LLaVA (CLIP vision tower + Llama) built from scratch.

Why LLaVA and not Qwen2.5-VL: the Qwen2-VL family's processor always carries a video
processor, and transformers 5 builds that only with torchvision, which a CPU-only install
does not have. LLaVA's processor is an image processor and a tokenizer, nothing else, and
CLIP's image processor has a pure-PIL backend. TRL's GRPOTrainer handles LLaVA (one
`pixel_values` row per image) like any other vision-language model.

Every image is resized to `image_size` square pixels and cut into `patch_size` patches; the
model sees one token per patch plus CLIP's class token (`vision_feature_select_strategy =
"full"`). With the default 28-pixel images and 14-pixel patches that is 5 image tokens, so
an image costs the tiny model about as much as a short word.

The tokenizer is the tiny text tokenizer's vocabulary (`sparkrl.tiny.tokenizer`) plus the
`<image>` placeholder and the words of the shape-counting questions; its chat template
renders TRL's structured content (`{"type": "image"}` / `{"type": "text"}` parts) as well as
plain strings. It writes a message's text parts first and its images after them, whatever
their order (TRL puts a dataset's images first): every prompt then ends with the question and
the image, so the image tokens sit at the same distance from the reply in a judge prompt as
in a policy prompt. The tiny model finds what it reads by that distance (rotary positions,
as `sparkrl.tiny.templates` explains for the text task's question); with the image first,
its count inside judge prompts was right on 53-62% of held-out replies against 80-90% in
policy prompts, and SPARK's image judge never learnt (docs/vision.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import (
    CLIPImageProcessorPil,
    CLIPVisionConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedTokenizerFast,
)

from sparkrl.tiny.model import TinySize, llama_config, seeded_model
from sparkrl.tiny.tokenizer import build_tokenizer

IMAGE_TOKEN = "<image>"
# Words of the shape-counting questions (see sparkrl.tiny_vl.task), one token each.
TASK_WORDS = ("How", "many", "shapes", "red", "green", "blue")

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<' + message['role'] + '>' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '" + IMAGE_TOKEN + "' }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ eos_token }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<assistant>' }}{% endif %}"
)


@dataclass(frozen=True)
class TinyVLSize:
    """Shape of the tiny vision-language model.

    image_size / patch_size: pixels per side of the (resized) image and of a patch; the
        image holds (image_size / patch_size)^2 patches.
    vision_hidden / vision_layers / vision_heads: the CLIP vision tower.
    hidden / layers / heads / intermediate / max_positions: the Llama language model.
    """

    image_size: int = 28
    patch_size: int = 14
    vision_hidden: int = 32
    vision_layers: int = 1
    vision_heads: int = 2
    hidden: int = 64
    layers: int = 2
    heads: int = 8
    intermediate: int = 192
    max_positions: int = 256

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value < 1:
                raise ValueError(f"TinyVLSize.{name} must be positive, got {value}")
        if self.image_size % self.patch_size:
            raise ValueError(f"TinyVLSize.image_size ({self.image_size}) must be a multiple of patch_size ({self.patch_size})")
        if self.vision_hidden % self.vision_heads:
            raise ValueError(f"TinyVLSize.vision_hidden ({self.vision_hidden}) must be divisible by vision_heads ({self.vision_heads})")
        self.language  # the Llama half passes the text model's checks (heads divide hidden, even head size)

    @property
    def language(self) -> TinySize:
        """The shape of the Llama language model."""
        return TinySize(self.hidden, self.layers, self.heads, self.intermediate, self.max_positions)

    @property
    def image_tokens(self) -> int:
        """Tokens one image takes in the prompt: one per patch plus the class token."""
        return (self.image_size // self.patch_size) ** 2 + 1


def build_vl_tokenizer() -> PreTrainedTokenizerFast:
    """The tiny tokenizer's vocabulary plus `<image>` and the task words (deterministic ids)."""
    return build_tokenizer(extra_words=TASK_WORDS, extra_specials=(IMAGE_TOKEN,), chat_template=CHAT_TEMPLATE)


def build_vl_processor(size: TinyVLSize = TinyVLSize()) -> LlavaProcessor:
    """LLaVA's processor: a PIL-only CLIP image processor (exact resize, no crop) and the tokenizer."""
    side = {"height": size.image_size, "width": size.image_size}
    images = CLIPImageProcessorPil(
        size=side,
        crop_size=side,
        do_center_crop=False,
        do_convert_rgb=True,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    return LlavaProcessor(
        image_processor=images,
        tokenizer=build_vl_tokenizer(),
        patch_size=size.patch_size,
        vision_feature_select_strategy="full",
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
        image_token=IMAGE_TOKEN,
    )


def build_tiny_vl_model(processor: LlavaProcessor, seed: int, size: TinyVLSize = TinyVLSize()) -> LlavaForConditionalGeneration:
    """A randomly initialised tiny LLaVA whose vocabulary, special ids and patches match `processor`."""
    tokenizer = processor.tokenizer
    if processor.patch_size != size.patch_size:
        raise ValueError(f"processor patch size {processor.patch_size} differs from the model's {size.patch_size}")
    text = llama_config(tokenizer, size.language)
    vision = CLIPVisionConfig(
        hidden_size=size.vision_hidden,
        intermediate_size=2 * size.vision_hidden,
        num_hidden_layers=size.vision_layers,
        num_attention_heads=size.vision_heads,
        image_size=size.image_size,
        patch_size=size.patch_size,
        projection_dim=size.vision_hidden,
    )
    config = LlavaConfig(
        text_config=text,
        vision_config=vision,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        image_seq_length=size.image_tokens,
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        tie_word_embeddings=True,
    )
    return seeded_model(lambda: LlavaForConditionalGeneration(config), tokenizer, seed)
