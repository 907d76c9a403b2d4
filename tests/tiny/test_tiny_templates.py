"""Tests for sparkrl.tiny.templates: compact, complete, and cheap for the tiny tokenizer."""

from __future__ import annotations

import re
from dataclasses import fields

from sparkrl.templates import pairwise_prompt, pointwise_prompt, reflection_prompt
from sparkrl.tiny.templates import TINY_TEMPLATES
from sparkrl.tiny.tokenizer import WORDS, build_tokenizer


def test_every_pool_has_several_paraphrases_asking_for_boxed() -> None:
    for f in fields(TINY_TEMPLATES):
        pool = getattr(TINY_TEMPLATES, f.name)
        assert len(pool) >= 3, f.name
        assert len(set(pool)) == len(pool), f.name
        assert all("\\boxed{{" in t for t in pool), f.name


def test_every_template_ends_with_the_question_on_its_own_line() -> None:
    for f in fields(TINY_TEMPLATES):
        assert all(t.endswith("\n{question}") for t in getattr(TINY_TEMPLATES, f.name)), f.name


def test_every_instruction_word_is_one_token() -> None:
    for f in fields(TINY_TEMPLATES):
        for template in getattr(TINY_TEMPLATES, f.name):
            text = re.sub(r"\{[a-z_]+\}|boxed", "", template)
            words = set(re.findall(r"[A-Za-z]{2,}", text))
            assert words <= set(WORDS), (f.name, words - set(WORDS))


def test_rendered_prompts_are_short() -> None:
    tokenizer = build_tokenizer()
    attempt = "7+5=12 4+8=12 3+2+1=6 \\boxed{622}"
    prompts = [pointwise_prompt("347+285", "632", templates=TINY_TEMPLATES)]
    prompts.append(pointwise_prompt("347+285", "632", letters=True, templates=TINY_TEMPLATES))
    prompts.append(pairwise_prompt("347+285", "632", "622", templates=TINY_TEMPLATES))
    prompts.append(reflection_prompt("347+285", attempt, "cot", templates=TINY_TEMPLATES))
    prompts.append(reflection_prompt("347+285", "622", "answer", templates=TINY_TEMPLATES))
    lengths = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    assert max(lengths) <= 60, lengths


def test_fixed_templates_put_the_candidates_right_before_the_question() -> None:
    from sparkrl.templates import resolve_templates
    from sparkrl.tiny.templates import TINY_FIXED_TEMPLATES

    assert resolve_templates("tiny-fixed") is TINY_FIXED_TEMPLATES
    for template in TINY_FIXED_TEMPLATES.pairwise:
        assert template.endswith("\nA: {candidate_a} B: {candidate_b}\n{question}")
    for template in TINY_FIXED_TEMPLATES.pointwise + TINY_FIXED_TEMPLATES.pointwise_letter:
        assert template.endswith(" {candidate}\n{question}")
