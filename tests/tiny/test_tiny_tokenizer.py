"""Tests for sparkrl.tiny.tokenizer: round trips, specials, chat template, save/load."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from sparkrl.tiny.tokenizer import BOXED, SPECIAL_TOKENS, WORDS, build_tokenizer, vocabulary


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


@pytest.mark.parametrize(
    "text",
    ["7+5=12 4+8+1=13 \\boxed{632}", "Is 632 correct? \\boxed{Yes}", "Note: No-one\tsaid\n{}\\box{", "", "  spaces  "],
)
def test_round_trip_is_exact(tokenizer, text: str) -> None:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text


def test_digits_are_single_tokens_and_words_are_whole(tokenizer) -> None:
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("Is 347 right? \\boxed{No}", add_special_tokens=False)["input_ids"])
    assert tokens == ["Is", " ", "3", "4", "7", " ", "right", "?", " ", BOXED, "No", "}"]


def test_words_glued_to_letters_are_spelled_out(tokenizer) -> None:
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("Note Island", add_special_tokens=False)["input_ids"])
    assert "No" not in tokens and "Is" not in tokens
    assert "".join(tokens) == "Note Island"


def test_unknown_characters_become_unk(tokenizer) -> None:
    ids = tokenizer("1é2", add_special_tokens=False)["input_ids"]
    assert ids[1] == tokenizer.unk_token_id
    assert len(ids) == 3


def test_vocabulary_is_unique_and_stable() -> None:
    vocab = vocabulary()
    assert len(vocab) == len(set(vocab)) == len(set(vocab.values()))
    assert [vocab[t] for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))
    assert set(WORDS) <= set(vocab)


def test_special_tokens_and_padding_side(tokenizer) -> None:
    assert tokenizer.pad_token == "<pad>" and tokenizer.eos_token == "<eos>" and tokenizer.bos_token == "<bos>"
    assert len({tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id}) == 3
    assert tokenizer.padding_side == "left"
    assert tokenizer("12")["input_ids"] == tokenizer("12", add_special_tokens=False)["input_ids"]


def test_chat_template_renders_turns_and_generation_prompt(tokenizer) -> None:
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "1+2"}]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text == "<bos><system>s<eos><user>1+2<eos><assistant>"
    without = tokenizer.apply_chat_template(messages, add_generation_prompt=False, tokenize=False)
    assert without == "<bos><system>s<eos><user>1+2<eos>"
    ids = tokenizer.apply_chat_template(messages[1:], add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == ["<bos>", "<user>", "1", "+", "2", "<eos>", "<assistant>"]


def test_assistant_turn_in_history_ends_with_eos(tokenizer) -> None:
    messages = [{"role": "user", "content": "1+2"}, {"role": "assistant", "content": "\\boxed{3}"}]
    assert tokenizer.apply_chat_template(messages, tokenize=False).endswith("<assistant>\\boxed{3}<eos>")


def test_save_and_load(tokenizer, tmp_path: Path) -> None:
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = "Check 12+34=46\nPut Yes or No in \\boxed{}"
    assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert loaded.chat_template == tokenizer.chat_template
    assert loaded.pad_token_id == tokenizer.pad_token_id and loaded.padding_side == "left"
    assert len(loaded) == len(tokenizer)


def test_mark_tokens_glue_a_mark_to_the_verdict_box_only_where_it_touches(tmp_path: Path) -> None:
    plain, marked = build_tokenizer(), build_tokenizer(mark_tokens=True)
    # The plain vocabulary keeps its ids; the marked boxes come after it.
    assert vocabulary(mark_tokens=True) == {**vocabulary(), "+" + BOXED: len(plain), "-" + BOXED: len(plain) + 1}
    reply = "2+3=5 7+3+0=10 \\boxed{0} A: 1- B: 0+\\boxed{A}"
    tokens = marked.convert_ids_to_tokens(marked(reply, add_special_tokens=False)["input_ids"])
    assert tokens[-3:] == ["+" + BOXED, "A", "}"]
    # A sum's plus signs and a box after a space stay as they were.
    assert tokens[:-3] == plain.convert_ids_to_tokens(plain(reply[: -len("+\\boxed{A}")], add_special_tokens=False)["input_ids"])
    for text in (reply, "1-\\boxed{No}", "-\\boxed{+\\boxed{", "12+34=46 \\boxed{6}"):
        assert marked.decode(marked(text, add_special_tokens=False)["input_ids"]) == text
    marked.save_pretrained(tmp_path)
    assert AutoTokenizer.from_pretrained(tmp_path)(reply)["input_ids"] == marked(reply)["input_ids"]


def test_the_vision_language_tokenizer_is_this_one_with_its_own_tokens_after_it() -> None:
    from sparkrl.tiny_vl.model import IMAGE_TOKEN, TASK_WORDS, build_vl_tokenizer

    plain, image = build_tokenizer(), build_vl_tokenizer()
    vocab = image.get_vocab()
    # Every id of the text vocabulary is kept; the placeholder, then the task words, come after it.
    assert {t: vocab[t] for t in plain.get_vocab()} == plain.get_vocab()
    assert [vocab[t] for t in (IMAGE_TOKEN, *TASK_WORDS)] == list(range(len(plain), len(plain) + 1 + len(TASK_WORDS)))
    assert IMAGE_TOKEN in image.all_special_tokens and IMAGE_TOKEN not in plain.get_vocab()
    # The task words are whole in the image tokenizer only; the rest splits exactly as in the text one.
    question = "How many red shapes? Is 3 the answer?"
    assert image.convert_ids_to_tokens(image(question, add_special_tokens=False)["input_ids"])[:6] == [
        "How", " ", "many", " ", "red", " "]
    assert plain.convert_ids_to_tokens(plain(question, add_special_tokens=False)["input_ids"])[:2] == ["H", "o"]
    tail = "Is 3 the answer?"
    assert image(tail, add_special_tokens=False)["input_ids"] == plain(tail, add_special_tokens=False)["input_ids"]
    # The image placeholder is one token even glued to text.
    assert image.convert_ids_to_tokens(image("red<image>", add_special_tokens=False)["input_ids"]) == ["red", IMAGE_TOKEN]
