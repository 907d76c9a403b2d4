"""Instruction template pools for the recycled judge and reflection prompts.

A `TemplateSet` holds one pool of paraphrased instructions per prompt family. Recycling picks
one template at random per item so that the model does not learn to key on a single
phrasing; test-time use passes `rng=None` and always gets the first template of the pool.

Templates are Python format strings: fields are written `{question}`, `{candidate}`, ...,
and literal braces are doubled (`\\boxed{{Yes}}`). Every template of our default pools asks
for the verdict or the answer inside `\\boxed{}`, because the verifier reads the last
`\\boxed{}` of a response (the authors' judge prompts asked for `\\box{}`, which their own
checker did not read). All wording here is ours.
"""

from __future__ import annotations

import importlib
import random
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Literal

ReflectionMode = Literal["cot", "answer"]
REFLECTION_MODES: tuple[str, ...] = ("cot", "answer")

# Pool name -> the fields every template of that pool must use (and the only ones it may use).
REQUIRED_FIELDS: dict[str, frozenset[str]] = {
    "pointwise": frozenset({"question", "candidate"}),
    "pointwise_letter": frozenset({"question", "candidate"}),
    "pairwise": frozenset({"question", "candidate_a", "candidate_b"}),
    "reflection_cot": frozenset({"question", "attempt"}),
    "reflection_answer": frozenset({"question", "attempt"}),
}


def template_fields(template: str) -> list[str]:
    """The replacement fields of a format string, in order (raises ValueError if malformed)."""
    found = []
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if spec or conversion:
            raise ValueError(f"field {{{name}}} has a format spec or conversion; use plain {{name}}")
        found.append(name)
    return found


def _check_template(pool: str, index: int, template: object) -> None:
    where = f"template {index} of pool {pool!r}"
    if not isinstance(template, str) or not template.strip():
        raise ValueError(f"{where} must be a non-empty string, got {template!r}")
    try:
        used = set(template_fields(template))
    except ValueError as err:
        raise ValueError(f"{where}: {err} (write literal braces as {{{{ and }}}})") from err
    allowed = REQUIRED_FIELDS[pool]
    unknown = used - allowed
    if unknown:
        shown = ", ".join("{" + name + "}" for name in sorted(unknown))
        raise ValueError(
            f"{where} uses unknown field(s) {shown}; allowed: {sorted(allowed)} "
            "(write literal braces as {{ and }}, e.g. \\boxed{{Yes}})"
        )
    missing = allowed - used
    if missing:
        raise ValueError(f"{where} lacks required field(s) {sorted(missing)}")


@dataclass(frozen=True)
class TemplateSet:
    """One pool of paraphrased templates per recycled prompt family (see REQUIRED_FIELDS).

    pointwise: verdict `\\boxed{Yes}` (correct) or `\\boxed{No}`.
    pointwise_letter: `\\boxed{A}` means correct, `\\boxed{B}` wrong.
    pairwise: the letter of the correct candidate, `\\boxed{A}` or `\\boxed{B}`.
    reflection_cot: `{attempt}` is a wrong full reasoning trace.
    reflection_answer: `{attempt}` is a wrong final answer only.
    Lists are accepted and stored as tuples; every template is checked when the set is built.
    """

    pointwise: tuple[str, ...]
    pointwise_letter: tuple[str, ...]
    pairwise: tuple[str, ...]
    reflection_cot: tuple[str, ...]
    reflection_answer: tuple[str, ...]

    def __post_init__(self) -> None:
        for f in fields(self):
            pool = getattr(self, f.name)
            if isinstance(pool, str) or not isinstance(pool, Sequence):
                raise ValueError(f"pool {f.name!r} must be a sequence of strings, got {type(pool).__name__}")
            pool = tuple(pool)
            if not pool:
                raise ValueError(f"pool {f.name!r} is empty; it needs at least one template")
            for index, template in enumerate(pool):
                _check_template(f.name, index, template)
            object.__setattr__(self, f.name, pool)


_POINTWISE = (
    "Here is a problem and a proposed final answer.\n\nProblem:\n{question}\n\n"
    "Proposed answer: {candidate}\n\nIs the proposed answer correct? Think it through, then "
    "give your verdict as \\boxed{{Yes}} if it is correct or \\boxed{{No}} if it is not.",
    "Check the final answer below against the question.\n\nQuestion: {question}\n\n"
    "Final answer to check: {candidate}\n\nWork out whether it is right. End with "
    "\\boxed{{Yes}} for a correct answer and \\boxed{{No}} for an incorrect one.",
    "You are grading a student's result.\n\nTask:\n{question}\n\nStudent's final answer: "
    "{candidate}\n\nDecide whether the student's answer is correct. Reason briefly, then "
    "write \\boxed{{Yes}} or \\boxed{{No}}.",
    "{question}\n\nSomeone answered this with: {candidate}\n\nVerify that answer. If it "
    "is correct, finish with \\boxed{{Yes}}; otherwise finish with \\boxed{{No}}.",
    "Problem statement:\n{question}\n\nClaimed solution value: {candidate}\n\nDoes the "
    "claimed value solve the problem correctly? Show your check and put Yes or No inside "
    "\\boxed{{}}.",
    "Act as a careful verifier. The question is:\n{question}\n\nThe answer under review is: "
    "{candidate}\n\nSolve or check as needed, and state whether the answer is correct as "
    "\\boxed{{Yes}} or \\boxed{{No}}.",
    "Question:\n{question}\n\nCandidate answer: {candidate}\n\nIs this candidate the correct "
    "final answer? Answer with \\boxed{{Yes}} or \\boxed{{No}} after your reasoning.",
    "Below is a question followed by one possible answer.\n\n{question}\n\nPossible answer: "
    "{candidate}\n\nJudge its correctness. Your last line must be \\boxed{{Yes}} (correct) "
    "or \\boxed{{No}} (incorrect).",
    "Evaluate the response to the following problem.\n\nProblem: {question}\n\nResponse's "
    "final answer: {candidate}\n\nIs the response's final answer right? Conclude with "
    "\\boxed{{Yes}} or \\boxed{{No}}.",
    "Read the problem and the given answer, and tell me whether the answer is correct.\n\n"
    "{question}\n\nGiven answer: {candidate}\n\nPut your one-word verdict, Yes or No, in "
    "\\boxed{{}}.",
    "Verification task.\nProblem: {question}\nAnswer to verify: {candidate}\n\nIf the answer "
    "is correct respond \\boxed{{Yes}}, if it is wrong respond \\boxed{{No}}. Explain your "
    "reasoning first.",
    "A solver arrived at the final answer {candidate} for this problem:\n\n{question}\n\n"
    "Did the solver get it right? Check carefully and answer \\boxed{{Yes}} or \\boxed{{No}}.",
)

_POINTWISE_LETTER = (
    "Here is a problem and a proposed final answer.\n\nProblem:\n{question}\n\nProposed "
    "answer: {candidate}\n\nWhich is true?\n(A) The proposed answer is correct.\n(B) The "
    "proposed answer is incorrect.\nReason it through, then give the letter in \\boxed{{}}.",
    "Question: {question}\n\nFinal answer to check: {candidate}\n\nOptions:\n(A) correct\n"
    "(B) incorrect\nWork out which option applies and finish with \\boxed{{A}} or "
    "\\boxed{{B}}.",
    "You are grading a student's result.\n\nTask:\n{question}\n\nStudent's final answer: "
    "{candidate}\n\nChoose (A) if the answer is right or (B) if it is wrong, and write the "
    "chosen letter as \\boxed{{A}} or \\boxed{{B}}.",
    "{question}\n\nSomeone answered this with: {candidate}\n\nSelect one:\n(A) this answer is "
    "correct\n(B) this answer is not correct\nEnd your reply with the letter inside "
    "\\boxed{{}}.",
    "Problem statement:\n{question}\n\nClaimed solution value: {candidate}\n\nA. The claim is "
    "correct.\nB. The claim is wrong.\nCheck the claim and put A or B in \\boxed{{}}.",
    "Act as a careful verifier. The question is:\n{question}\n\nThe answer under review is: "
    "{candidate}\n\nReply \\boxed{{A}} if the answer is correct and \\boxed{{B}} if it is "
    "incorrect, after checking it.",
    "Question:\n{question}\n\nCandidate answer: {candidate}\n\nIs the candidate correct?\n"
    "(A) Yes\n(B) No\nGive your reasoning and then the option letter in \\boxed{{}}.",
    "Below is a question followed by one possible answer.\n\n{question}\n\nPossible answer: "
    "{candidate}\n\nOption A: the answer is right. Option B: the answer is wrong. Pick one and "
    "put its letter in \\boxed{{}} as the last thing you write.",
    "Evaluate the response to the following problem.\n\nProblem: {question}\n\nResponse's "
    "final answer: {candidate}\n\n(A) correct  (B) incorrect\nConclude with \\boxed{{A}} or "
    "\\boxed{{B}}.",
    "Verification task.\nProblem: {question}\nAnswer to verify: {candidate}\n\nRespond with "
    "\\boxed{{A}} when the answer is correct, \\boxed{{B}} when it is wrong. Explain first.",
    "A solver arrived at the final answer {candidate} for this problem:\n\n{question}\n\n"
    "(A) The solver is right.\n(B) The solver is wrong.\nAnswer with the letter in "
    "\\boxed{{}}.",
)

_PAIRWISE = (
    "A problem and two candidate final answers follow. Exactly one of them is correct.\n\n"
    "Problem:\n{question}\n\n(A) {candidate_a}\n(B) {candidate_b}\n\nWhich one is correct? "
    "Reason it through and give the letter as \\boxed{{A}} or \\boxed{{B}}.",
    "Question: {question}\n\nAnswer A: {candidate_a}\nAnswer B: {candidate_b}\n\nOne of these "
    "answers is right and the other is wrong. Identify the right one and finish with "
    "\\boxed{{A}} or \\boxed{{B}}.",
    "Two students solved the same task.\n\nTask:\n{question}\n\nStudent A's final answer: "
    "{candidate_a}\nStudent B's final answer: {candidate_b}\n\nOnly one student is correct. "
    "Who? Put A or B in \\boxed{{}}.",
    "{question}\n\nCompare these two final answers:\n(A) {candidate_a}\n(B) {candidate_b}\n\n"
    "Check both and choose the correct one. End with \\boxed{{A}} or \\boxed{{B}}.",
    "Problem statement:\n{question}\n\nOption A: {candidate_a}\nOption B: {candidate_b}\n\n"
    "One option is the correct answer. Work it out and write the letter of that option in "
    "\\boxed{{}}.",
    "Act as a judge between two responses to this question:\n{question}\n\nResponse A ends "
    "with: {candidate_a}\nResponse B ends with: {candidate_b}\n\nWhich response has the "
    "correct final answer? Reply \\boxed{{A}} or \\boxed{{B}} after your reasoning.",
    "Question:\n{question}\n\nCandidates:\nA) {candidate_a}\nB) {candidate_b}\n\nSelect the "
    "candidate that answers the question correctly, and give its letter inside \\boxed{{}}.",
    "Here are two proposed answers to a problem; one is correct, one is not.\n\n{question}\n\n"
    "First proposal (A): {candidate_a}\nSecond proposal (B): {candidate_b}\n\nDecide which "
    "proposal is correct. Your final line must be \\boxed{{A}} or \\boxed{{B}}.",
    "Evaluate two answers to the following problem.\n\nProblem: {question}\n\n[A] "
    "{candidate_a}\n[B] {candidate_b}\n\nWhich answer is right? Conclude with the letter in "
    "\\boxed{{}}.",
    "Pick the correct final answer.\n\n{question}\n\nA: {candidate_a}\nB: {candidate_b}\n\n"
    "Verify each, then state the correct one as \\boxed{{A}} or \\boxed{{B}}.",
    "Two solvers disagree on this problem:\n\n{question}\n\nSolver A says {candidate_a}; "
    "solver B says {candidate_b}. Exactly one of them is right. Find out which and answer "
    "\\boxed{{A}} or \\boxed{{B}}.",
)

_REFLECTION_COT = (
    "Problem:\n{question}\n\nHere is an earlier attempt at this problem. It reaches a wrong "
    "result.\n\n--- earlier attempt ---\n{attempt}\n--- end of attempt ---\n\nFind where it "
    "goes wrong, then solve the problem correctly and put the final answer in \\boxed{{}}.",
    "{question}\n\nA previous solution follows, but its conclusion is incorrect:\n\n"
    "{attempt}\n\nWrite a correct solution. Give the final answer inside \\boxed{{}}.",
    "Question: {question}\n\nThe reasoning below contains a mistake and ends with a wrong "
    "answer.\n\n<attempt>\n{attempt}\n</attempt>\n\nIdentify the error, redo the solution "
    "properly, and state the final answer as \\boxed{{}}.",
    "Task:\n{question}\n\nA student submitted this work, which was marked wrong:\n\n{attempt}"
    "\n\nProduce a corrected solution and write the final answer in \\boxed{{}}.",
    "The following attempt to solve a problem is flawed.\n\nProblem: {question}\n\nFlawed "
    "attempt:\n{attempt}\n\nSolve the problem yourself, avoiding the same mistake. Put your "
    "final answer in \\boxed{{}}.",
    "Problem statement:\n{question}\n\nThis worked solution gets the wrong answer:\n\n"
    "{attempt}\n\nRework it from the point where it fails and give the right final answer in "
    "\\boxed{{}}.",
    "{question}\n\nSomeone tried the problem like this, and the result is not correct:\n"
    "{attempt}\n\nWhat is the correct answer? Reason step by step and finish with "
    "\\boxed{{}}.",
    "Review this incorrect attempt and then solve the problem correctly.\n\nProblem:\n"
    "{question}\n\nIncorrect attempt:\n{attempt}\n\nYour final answer goes in \\boxed{{}}.",
    "Question:\n{question}\n\nPrevious (incorrect) reasoning:\n{attempt}\n\nDo not trust "
    "the result above. Solve the question again and box the final answer with \\boxed{{}}.",
    "Here is a problem together with a solution that ends in a wrong answer.\n\n{question}\n\n"
    "Solution with an error:\n{attempt}\n\nCorrect it and report the final answer as "
    "\\boxed{{}}.",
    "Problem:\n{question}\n\nDraft solution (known to be wrong):\n{attempt}\n\nExplain what "
    "the draft got wrong, then give a correct solution ending in \\boxed{{}}.",
)

_REFLECTION_ANSWER = (
    "Problem:\n{question}\n\nAn earlier attempt gave the final answer {attempt}, which is "
    "wrong. Solve the problem correctly and put the final answer in \\boxed{{}}.",
    "{question}\n\nNote: {attempt} is not the correct answer. Work out the right one and give "
    "it inside \\boxed{{}}.",
    "Question: {question}\n\nA previous answer to this question was {attempt}, and it was "
    "marked incorrect. Solve it again step by step and state the final answer as "
    "\\boxed{{}}.",
    "Task:\n{question}\n\nA student answered {attempt}, but that is wrong. What is the correct "
    "answer? Reason it out and finish with \\boxed{{}}.",
    "Solve the following problem. Be aware that the answer {attempt} has already been "
    "checked and is incorrect.\n\nProblem: {question}\n\nPut your final answer in "
    "\\boxed{{}}.",
    "Problem statement:\n{question}\n\nYour last answer, {attempt}, was incorrect. Try again "
    "carefully and write the final answer in \\boxed{{}}.",
    "{question}\n\nThe answer {attempt} is wrong. Find the correct answer, showing your "
    "reasoning, and box it with \\boxed{{}}.",
    "Here is a problem whose proposed answer ({attempt}) turned out to be incorrect.\n\n"
    "{question}\n\nSolve it correctly. The final answer goes in \\boxed{{}}.",
    "Question:\n{question}\n\nIncorrect answer given earlier: {attempt}\n\nRethink the "
    "problem from the start and give the correct final answer as \\boxed{{}}.",
    "Someone answered the problem below with {attempt}; that answer does not hold up.\n\n"
    "{question}\n\nWork out the correct answer and write it in \\boxed{{}}.",
    "Problem:\n{question}\n\nA wrong answer for reference: {attempt}\n\nAvoid that mistake, "
    "solve the problem, and present the final answer inside \\boxed{{}}.",
)

DEFAULT_TEMPLATES = TemplateSet(
    pointwise=_POINTWISE,
    pointwise_letter=_POINTWISE_LETTER,
    pairwise=_PAIRWISE,
    reflection_cot=_REFLECTION_COT,
    reflection_answer=_REFLECTION_ANSWER,
)


def render_template(pool: Sequence[str], rng: random.Random | None, **values: str) -> tuple[int, str]:
    """Fill one template of `pool`: the first if rng is None, else one drawn with rng.

    Returns (template index, prompt) so that callers can record which paraphrase was used.
    Values are inserted verbatim; braces inside them are not interpreted.
    """
    index = 0 if rng is None else rng.randrange(len(pool))
    return index, pool[index].format(**values)


def pointwise_prompt(
    question: str,
    candidate: str,
    rng: random.Random | None = None,
    *,
    letters: bool = False,
    templates: TemplateSet = DEFAULT_TEMPLATES,
) -> str:
    """A prompt asking whether `candidate` is a correct final answer to `question`.

    letters=False: verdict Yes/No; letters=True: A means correct, B means wrong.
    """
    pool = templates.pointwise_letter if letters else templates.pointwise
    return render_template(pool, rng, question=question, candidate=candidate)[1]


def pairwise_prompt(
    question: str,
    candidate_a: str,
    candidate_b: str,
    rng: random.Random | None = None,
    *,
    templates: TemplateSet = DEFAULT_TEMPLATES,
) -> str:
    """A prompt asking which of two final answers, shown as (A) and (B), is the correct one."""
    return render_template(
        templates.pairwise, rng, question=question, candidate_a=candidate_a, candidate_b=candidate_b
    )[1]


def reflection_prompt(
    question: str,
    attempt: str,
    mode: ReflectionMode,
    rng: random.Random | None = None,
    *,
    templates: TemplateSet = DEFAULT_TEMPLATES,
) -> str:
    """A prompt showing a wrong attempt (a full trace for "cot", a final answer for "answer")
    and asking for a correct solution with the answer in `\\boxed{}`."""
    return render_template(reflection_pool(templates, mode), rng, question=question, attempt=attempt)[1]


def reflection_pool(templates: TemplateSet, mode: str) -> tuple[str, ...]:
    """The template pool of a reflection mode ("cot" or "answer")."""
    if mode == "cot":
        return templates.reflection_cot
    if mode == "answer":
        return templates.reflection_answer
    raise ValueError(f"reflection mode must be one of {REFLECTION_MODES}, got {mode!r}")


# Template sets known by a short name; any other set is named by its import path.
NAMED_TEMPLATES: Mapping[str, str] = MappingProxyType({
    "default": "sparkrl.templates:DEFAULT_TEMPLATES",
    "tiny": "sparkrl.tiny.templates:TINY_TEMPLATES",
    "tiny-fixed": "sparkrl.tiny.templates:TINY_FIXED_TEMPLATES",
})


def resolve_templates(name: str | TemplateSet) -> TemplateSet:
    """A `TemplateSet` from a short name (`default`, `tiny`) or an import path
    `package.module:ATTRIBUTE`, so that configuration files and the command line can choose
    the pools (users add their own without editing the package). A `TemplateSet` is returned
    as it is."""
    if isinstance(name, TemplateSet):
        return name
    if not isinstance(name, str):
        raise ValueError(f"templates must be a name or 'package.module:ATTRIBUTE', got {name!r}")
    path = NAMED_TEMPLATES.get(name, name)
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(
            f"templates {name!r}: expected one of {sorted(NAMED_TEMPLATES)} or 'package.module:ATTRIBUTE'"
        )
    try:
        found = getattr(importlib.import_module(module_name), attr)
    except ImportError as exc:
        raise ValueError(f"templates {name!r}: cannot import module {module_name!r} ({exc})") from None
    except AttributeError:
        raise ValueError(f"templates {name!r}: module {module_name!r} has no {attr!r}") from None
    if not isinstance(found, TemplateSet):
        raise ValueError(f"templates {name!r} is a {type(found).__name__}, not a TemplateSet")
    return found
