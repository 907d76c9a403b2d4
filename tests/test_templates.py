"""Tests for sparkrl.templates: the default pools, rendering, and template validation."""

from __future__ import annotations

import dataclasses
import random

import pytest

from sparkrl.templates import (
    DEFAULT_TEMPLATES,
    REQUIRED_FIELDS,
    TemplateSet,
    pairwise_prompt,
    pointwise_prompt,
    reflection_prompt,
    render_template,
)

POOLS = tuple(REQUIRED_FIELDS)
COMPACT = TemplateSet(
    pointwise=["{question} = {candidate}? \\boxed{{Yes}}/\\boxed{{No}}"],
    pointwise_letter=["{question} = {candidate}? A/B"],
    pairwise=["{question} A={candidate_a} B={candidate_b}"],
    reflection_cot=["{question} wrong: {attempt}"],
    reflection_answer=["{question} not {attempt}"],
)


def _fill(pool: str, template: str) -> str:
    return template.format(**{name: f"<{name}>" for name in REQUIRED_FIELDS[pool]})


@pytest.mark.parametrize("pool", POOLS)
def test_default_pools_have_ten_distinct_paraphrases_asking_for_boxed(pool):
    templates = getattr(DEFAULT_TEMPLATES, pool)
    assert len(templates) >= 10
    assert len(set(templates)) == len(templates)
    for template in templates:
        rendered = _fill(pool, template)
        assert "\\boxed{" in rendered and "\\box{" not in rendered
        assert "{{" not in rendered and "}}" not in rendered


@pytest.mark.parametrize("pool,verdicts", [
    ("pointwise", ("Yes", "No")), ("pointwise_letter", ("A", "B")), ("pairwise", ("A", "B")),
])
def test_judge_templates_name_both_verdicts(pool, verdicts):
    for template in getattr(DEFAULT_TEMPLATES, pool):
        rendered = _fill(pool, template)
        assert all(v in rendered for v in verdicts), template


def test_rng_none_picks_first_template_and_a_seeded_rng_is_deterministic():
    first = DEFAULT_TEMPLATES.pointwise[0].format(question="Q?", candidate="7")
    assert pointwise_prompt("Q?", "7") == first
    drawn = [pointwise_prompt("Q?", "7", random.Random(s)) for s in range(40)]
    assert drawn == [pointwise_prompt("Q?", "7", random.Random(s)) for s in range(40)]
    assert len(set(drawn)) > 5


def test_render_template_reports_the_index_used():
    pool = DEFAULT_TEMPLATES.pairwise
    index, prompt = render_template(pool, random.Random(3), question="q", candidate_a="1", candidate_b="2")
    assert prompt == pool[index].format(question="q", candidate_a="1", candidate_b="2")
    assert render_template(pool, None, question="q", candidate_a="1", candidate_b="2")[0] == 0


def test_values_with_braces_are_inserted_verbatim():
    question = "Evaluate {candidate} and {0} in \\frac{1}{2}"
    prompt = pointwise_prompt(question, "\\boxed{3}", letters=True)
    assert question in prompt and "\\boxed{3}" in prompt


def test_each_prompt_function_uses_its_pool():
    assert pointwise_prompt("q", "c", letters=True) == DEFAULT_TEMPLATES.pointwise_letter[0].format(
        question="q", candidate="c")
    assert pairwise_prompt("q", "x", "y") == DEFAULT_TEMPLATES.pairwise[0].format(
        question="q", candidate_a="x", candidate_b="y")
    assert reflection_prompt("q", "t", "cot") == DEFAULT_TEMPLATES.reflection_cot[0].format(question="q", attempt="t")
    assert reflection_prompt("q", "t", "answer") == DEFAULT_TEMPLATES.reflection_answer[0].format(
        question="q", attempt="t")
    with pytest.raises(ValueError, match="reflection mode"):
        reflection_prompt("q", "t", "trace")


def test_a_compact_custom_set_is_accepted_and_stored_as_tuples():
    assert isinstance(COMPACT.pairwise, tuple)
    assert pointwise_prompt("2+2", "4", templates=COMPACT) == "2+2 = 4? \\boxed{Yes}/\\boxed{No}"
    assert reflection_prompt("2+2", "5", "answer", random.Random(0), templates=COMPACT) == "2+2 not 5"


@pytest.mark.parametrize("pool,template,message", [
    ("pointwise", "{question} {candidate} {answer}", "unknown field"),
    ("pointwise", "{question} {candidate} \\boxed{Yes}", "unknown field"),
    ("pointwise", "{question} {candidate} \\boxed{}", "literal braces"),
    ("pointwise", "{question} only", "lacks required"),
    ("pairwise", "{question} {candidate_a}", "lacks required"),
    ("reflection_cot", "{question} {attempt!r}", "format spec"),
    ("reflection_answer", "{question} {attempt:>10}", "format spec"),
    ("reflection_answer", "{question} {attempt.x}", "unknown field"),
    ("pointwise_letter", "{question} {candidate", "literal braces"),
    ("pointwise", "   ", "non-empty string"),
    ("pointwise", 7, "non-empty string"),
])
def test_bad_templates_are_rejected_when_the_set_is_built(pool, template, message):
    with pytest.raises(ValueError, match=message) as err:
        dataclasses.replace(COMPACT, **{pool: (template,)})
    assert repr(pool) in str(err.value)


@pytest.mark.parametrize("value", [(), "{question} {candidate}", None])
def test_bad_pools_are_rejected(value):
    with pytest.raises(ValueError, match="pool 'pointwise'"):
        dataclasses.replace(COMPACT, pointwise=value)


def test_template_sets_resolve_from_names_and_import_paths():
    from sparkrl.recycling import RecyclingConfig
    from sparkrl.templates import resolve_templates
    from sparkrl.tiny.templates import TINY_TEMPLATES

    assert resolve_templates("default") is DEFAULT_TEMPLATES
    assert resolve_templates("tiny") is TINY_TEMPLATES
    assert resolve_templates("sparkrl.tiny.templates:TINY_TEMPLATES") is TINY_TEMPLATES
    assert resolve_templates(TINY_TEMPLATES) is TINY_TEMPLATES
    # configuration files name the pools; the recycling config holds the resolved set
    assert RecyclingConfig(templates="tiny").templates is TINY_TEMPLATES


@pytest.mark.parametrize(
    "name,match",
    [
        ("huge", "expected one of"),
        ("no_such_module_xyz:T", "cannot import module"),
        ("sparkrl.templates:NOPE", "has no 'NOPE'"),
        ("sparkrl.templates:render_template", "not a TemplateSet"),
        (3, "must be a name"),
    ],
)
def test_unknown_template_sets_are_clear_errors(name, match):
    from sparkrl.templates import resolve_templates

    with pytest.raises(ValueError, match=match):
        resolve_templates(name)
