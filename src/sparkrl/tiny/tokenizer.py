"""The tiny model's tokenizer: printable ASCII characters plus a few whole words.

Digits are single tokens, so the model sees numbers digit by digit. The words the tiny
instruction templates use, and `\\boxed{`, are single tokens too, which keeps judge and
reflection prompts short. Any other text still round-trips exactly, one character per
token; characters outside printable ASCII become `<unk>`.

The result is a standard `PreTrainedTokenizerFast` with a chat template, so TRL's
conversational prompts (`apply_chat_template(..., add_generation_prompt=True)`) work and it
saves and loads with `save_pretrained` / `from_pretrained`. A turn is
`<user>text<eos>`; the assistant's turn ends with `<eos>`, which is where generation stops.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
ROLE_TOKENS = ("<system>", "<user>", "<assistant>")
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK, *ROLE_TOKENS)
BOXED = "\\boxed{"
# A `marks` judge reply's last mark glued to the verdict's box (`B: 0+\\boxed{A}`), as one token
# each when a tokenizer is built with `mark_tokens`: see `build_tokenizer`.
MARKED_BOXES = ("+" + BOXED, "-" + BOXED)

# Whole-word tokens: every word of the tiny templates (see `sparkrl.tiny.templates`) and the
# verdict labels. Longer words first, so the tokenizer's regex prefers them.
WORDS = tuple(
    sorted(
        {
            "Yes", "No", "Is", "Which", "correct", "right", "wrong", "answer", "Answer",
            "Candidate", "Check", "Put", "or", "in", "it", "It", "is", "this", "the", "of",
            "Give", "if", "Question", "Pick", "one", "Compare", "and", "for", "Attempt",
            "attempt", "Solve", "again", "Problem", "This", "Fix", "Earlier", "The", "was",
            "Try", "Not",
        },
        key=lambda w: (-len(w), w),
    )
)

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<' + message['role'] + '>' + message['content'] + eos_token }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<assistant>' }}{% endif %}"
)


def vocabulary(mark_tokens: bool = False, extra_tokens: Sequence[str] = ()) -> dict[str, int]:
    """Token -> id: special tokens first (so ids are stable), then characters, then words, then
    (with `mark_tokens`) the marked boxes, then `extra_tokens` in their order (a variant's own
    tokens, e.g. the image placeholder: every id of the base vocabulary stays what it is)."""
    characters = [c for c in string.printable if c not in "\r\x0b\x0c"]
    tokens = [*SPECIAL_TOKENS, *characters, BOXED, *WORDS, *(MARKED_BOXES if mark_tokens else ())]
    vocab = {token: index for index, token in enumerate(tokens)}
    for token in extra_tokens:
        vocab.setdefault(token, len(vocab))
    return vocab


def _split_pattern(words: Sequence[str], mark_tokens: bool = False) -> str:
    ordered = "|".join(re.escape(w) for w in sorted(set(words), key=lambda w: (-len(w), w)))
    marked = r"[+-]\\boxed\{|" if mark_tokens else ""
    # A word counts only when not glued to other letters, so "Note" is N-o-t-e, not "No"+"te".
    return marked + r"\\boxed\{|(?<![A-Za-z])(?:" + ordered + r")(?![A-Za-z])|[\s\S]"


def build_tokenizer(
    mark_tokens: bool = False,
    *,
    extra_words: Sequence[str] = (),
    extra_specials: Sequence[str] = (),
    chat_template: str = CHAT_TEMPLATE,
) -> PreTrainedTokenizerFast:
    """A fresh tiny tokenizer (deterministic: same ids every time). The one builder of every tiny
    tokenizer: the vision-language variant (`sparkrl.tiny_vl.model`) is this one with its own words,
    its image placeholder and its chat template.

    mark_tokens: `+\\boxed{` and `-\\boxed{` are single tokens, so in a `marks` judge reply
    (`sparkrl.tiny.warmstart.marked_reply`) the verdict letter is predicted at the position of
    the last mark itself: following the mark is then a matter of that one token's embedding,
    which nothing but verdicts uses. The text is the same either way; only its tokens differ.
    (Measured in docs/demo.md: RL then moved the decision into the choice of the mark.)
    extra_words: whole words, one token each, after the base vocabulary.
    extra_specials: special tokens (never split, kept on decoding), after the base vocabulary and
        before `extra_words`.
    """
    vocab = vocabulary(mark_tokens, extra_tokens=(*extra_specials, *extra_words))
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(_split_pattern((*WORDS, *extra_words), mark_tokens)), behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        additional_special_tokens=[*ROLE_TOKENS, *extra_specials],
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = chat_template
    return tokenizer
