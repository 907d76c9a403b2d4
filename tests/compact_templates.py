"""The one-line judge and reflection templates that tests of the scripted backend use.

Each prompt names its kind and fields between bars (`JUDGE|question|candidate`), so the answer
functions given to `conftest.ScriptedBackend` tell a prompt's kind by its prefix and read its
fields with one `split("|")`. Tests import it as a plain module: `tests/` is on the import path
because its `conftest.py` is.
"""

from sparkrl.templates import TemplateSet

COMPACT_TEMPLATES = TemplateSet(
    pointwise=("JUDGE|{question}|{candidate}",),
    pointwise_letter=("LETTER|{question}|{candidate}",),
    pairwise=("PAIR|{question}|{candidate_a}|{candidate_b}",),
    reflection_cot=("REDO-COT|{question}|{attempt}",),
    reflection_answer=("REDO|{question}|{attempt}",),
)
