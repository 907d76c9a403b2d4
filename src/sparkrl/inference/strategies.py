"""Test-time strategies: how one model turns a question into the answer that counts.

- `single`: one answer (or `n` samples; the first counts, the rest feed pass@1 and maj@k).
- `reflection`: the authors' evaluation loop. Answer greedily; judge the final answer with a
  pointwise prompt; while the verdict is not `Yes`, revise (told the last answer is wrong),
  at most `rounds` times. The last answer counts; every round is recorded.
- `best_of_n`: sample `n` answers, score each with the model's own pointwise verdict, keep
  the best (the first on ties).
- `majority`: sample `n` answers, keep the most frequent final answer.
- `weighted_majority`: like `majority`, each vote weighted by its self-judged score.

A self-judged score is P(`Yes`) read from the token log-probabilities at the verdict inside
`\\boxed{}` (renormalised over `Yes`/`No`) when the backend supplies them; otherwise the
fraction of `judge_samples` sampled verdicts that say `Yes`. Judges see only the extracted
final answer, as in training; an answer with no extractable final answer scores 0 and is
never shown to the judge. Best-of-k evaluation (`sparkrl.bestof`) ranks given responses with
the same scoring (`score_candidates`), or with pairwise verdicts (`judge_pairs`).

Departures from the paper: the revision prompt shows the wrong final answer ("answer"
mode); when no final answer could be extracted, it shows the whole attempt ("cot" mode)
instead, since there is no answer to quote. Votes group answers by their normalised string
form, so mathematically equal but differently written answers vote apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from sparkrl.inference.backends import Backend, Generation, Messages, SamplingParams, chat_messages
from sparkrl.templates import DEFAULT_TEMPLATES, TemplateSet, pairwise_prompt, pointwise_prompt, reflection_prompt
from sparkrl.verification import extract_final_answer, normalize_answer, verify_label

YES, NO = "Yes", "No"
BOXED_OPEN = "\\boxed{"
VERDICT_TOP_LOGPROBS = 20


@dataclass(frozen=True)
class Task:
    """One thing to answer. `question` is what the self-judge and the reviser quote; `prompt`
    is the user message that asks for the answer (the question plus any format instruction)."""

    question: str
    prompt: str
    system: str | None = None
    images: tuple[str, ...] = ()


@dataclass(frozen=True)
class StrategySettings:
    """Sampling of answers and of self-judgements.

    sampling: answers (`n` = samples for single, best_of_n and the votes; reflection uses 1).
    rounds: most revisions in self-reflection (the authors use 2).
    judge_samples: sampled verdicts per candidate when token probabilities are unavailable.
    judge_temperature: temperature of those sampled verdicts.
    judge_max_new_tokens: length limit of a verdict (reasoning included).
    templates: the pointwise and reflection prompt pools (the first template is used).
    """

    sampling: SamplingParams = field(default_factory=SamplingParams)
    rounds: int = 2
    judge_samples: int = 4
    judge_temperature: float = 1.0
    judge_max_new_tokens: int = 256
    templates: TemplateSet = DEFAULT_TEMPLATES

    def __post_init__(self) -> None:
        if self.rounds < 0:
            raise ValueError(f"rounds must be >= 0, got {self.rounds}")
        if self.judge_samples < 1:
            raise ValueError(f"judge_samples must be >= 1, got {self.judge_samples}")
        if self.judge_temperature <= 0:
            raise ValueError(f"judge_temperature must be > 0, got {self.judge_temperature}")
        if self.judge_max_new_tokens < 1:
            raise ValueError(f"judge_max_new_tokens must be >= 1, got {self.judge_max_new_tokens}")


@dataclass(frozen=True)
class Candidate:
    """One answer: raw text, extracted final answer, and (when judged) score and raw verdicts."""

    text: str
    answer: str | None
    score: float | None = None
    judge: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "answer": self.answer, "score": self.score, "judge": list(self.judge)}


@dataclass(frozen=True)
class Attempt:
    """What a strategy returns for one task: the response that counts, every candidate it
    considered, and for self-reflection one record per round."""

    final: Candidate
    candidates: tuple[Candidate, ...]
    rounds: tuple[Mapping[str, Any], ...] = ()


# --------------------------------------------------------------------------- helpers


def vote_key(answer: str) -> str:
    """The form under which answers vote together."""
    return normalize_answer(answer)


def to_candidate(generation: Generation) -> Candidate:
    return Candidate(generation.text, extract_final_answer(generation.text))


def sample_answers(backend: Backend, tasks: Sequence[Task], params: SamplingParams) -> list[list[Candidate]]:
    """`params.n` candidate answers per task."""
    if not tasks:
        return []
    prompts = [chat_messages(t.prompt, t.system, t.images) for t in tasks]
    return [[to_candidate(g) for g in gens] for gens in backend.generate(prompts, params)]


def verdict_probability(generation: Generation, options: tuple[str, str] = (YES, NO)) -> float | None:
    """P(options[0]) at the verdict token after the last `\\boxed{`, renormalised over both
    options; None without token log-probabilities or when neither option is among them."""
    if generation.tokens is None or generation.top_logprobs is None:
        return None
    joined = "".join(generation.tokens)
    opening = joined.rfind(BOXED_OPEN)
    if opening < 0:
        return None
    target = opening + len(BOXED_OPEN)
    offset = 0
    for token, top in zip(generation.tokens, generation.top_logprobs):
        if offset + len(token) > target:
            # The verdict token may carry text before the verdict (e.g. "{Yes"): alternatives
            # must share that lead-in to count.
            return _option_share(top, joined[offset:target], options)
        offset += len(token)
    return None


def _option_share(top: Mapping[str, float], lead: str, options: tuple[str, str]) -> float | None:
    mass = dict.fromkeys(options, 0.0)
    for alternative, logprob in top.items():
        if not alternative.startswith(lead):
            continue
        rest = alternative[len(lead) :].strip().lower()
        for option in options:
            # A token may hold the whole option ("Yes") or its start ("Y" with a character tokenizer).
            if rest and (option.lower().startswith(rest) or rest.startswith(option.lower())):
                mass[option] += math.exp(logprob)
                break
    total = sum(mass.values())
    return mass[options[0]] / total if total > 0 else None


def says_yes(text: str) -> bool:
    return verify_label(text, YES).correct


def pair_letter(text: str) -> str | None:
    """The letter (`A` or `B`) a pairwise verdict picks, or None when it picks neither."""
    for letter in ("A", "B"):
        if verify_label(text, letter).correct:
            return letter
    return None


def shown_answer(response: str) -> str:
    """What a judge sees of a given response (an evaluation item's): its final answer, or
    all of it when none is found."""
    return extract_final_answer(response) or response.strip()


def _judge_prompts(tasks: Sequence[Task], answers: Sequence[str], settings: StrategySettings) -> list[Messages]:
    return [
        chat_messages(pointwise_prompt(t.question, a, templates=settings.templates), t.system, t.images)
        for t, a in zip(tasks, answers)
    ]


def judge_greedy(
    backend: Backend,
    tasks: Sequence[Task],
    answers: Sequence[str],
    settings: StrategySettings,
    top_logprobs: int = 0,
) -> list[Generation]:
    """One greedy verdict per (task, final answer)."""
    return _greedy_verdicts(backend, _judge_prompts(tasks, answers, settings), settings, top_logprobs)


def judge_pairs(
    backend: Backend, tasks: Sequence[Task], pairs: Sequence[tuple[str, str]], settings: StrategySettings
) -> list[Generation]:
    """One greedy pairwise verdict (`\\boxed{A}` or `\\boxed{B}`) per (task, (answer A, answer B)),
    with the first pairwise template."""
    prompts = [
        chat_messages(pairwise_prompt(t.question, a, b, templates=settings.templates), t.system, t.images)
        for t, (a, b) in zip(tasks, pairs)
    ]
    return _greedy_verdicts(backend, prompts, settings)


def _greedy_verdicts(
    backend: Backend, prompts: Sequence[Messages], settings: StrategySettings, top_logprobs: int = 0
) -> list[Generation]:
    if not prompts:
        return []
    params = SamplingParams(
        n=1,
        temperature=0.0,
        max_new_tokens=settings.judge_max_new_tokens,
        seed=settings.sampling.seed,
        top_logprobs=top_logprobs,
    )
    return [gens[0] for gens in backend.generate(prompts, params)]


def score_candidates(
    backend: Backend, tasks: Sequence[Task], candidates: Sequence[Sequence[Candidate]], settings: StrategySettings
) -> list[list[Candidate]]:
    """Every candidate with its self-judged score (see the module docstring)."""
    # Flatten the answered candidates of all tasks, so each judging pass is one batch.
    slots = [(i, j) for i, row in enumerate(candidates) for j, c in enumerate(row) if c.answer is not None]
    judged = [(tasks[i], str(candidates[i][j].answer)) for i, j in slots]
    greedy = judge_greedy(backend, [t for t, _ in judged], [a for _, a in judged], settings, VERDICT_TOP_LOGPROBS)
    scores = [verdict_probability(g) for g in greedy]
    raw = [(g.text,) for g in greedy]
    unscored = [k for k, score in enumerate(scores) if score is None]
    if unscored:
        params = SamplingParams(
            n=settings.judge_samples,
            temperature=settings.judge_temperature,
            max_new_tokens=settings.judge_max_new_tokens,
            seed=settings.sampling.seed,
        )
        prompts = _judge_prompts([judged[k][0] for k in unscored], [judged[k][1] for k in unscored], settings)
        for k, samples in zip(unscored, backend.generate(prompts, params)):
            texts = tuple(g.text for g in samples)
            scores[k] = sum(map(says_yes, texts)) / len(texts)
            raw[k] += texts
    out = [[replace(c, score=0.0) for c in row] for row in candidates]
    for (i, j), score, texts in zip(slots, scores, raw):
        out[i][j] = replace(candidates[i][j], score=score, judge=texts)
    return out


def pick_best(candidates: Sequence[Candidate]) -> Candidate:
    """Highest self-judged score; the earliest on ties."""
    return max(candidates, key=lambda c: c.score or 0.0)


def pick_vote(candidates: Sequence[Candidate], weighted: bool = False) -> Candidate:
    """The first candidate whose answer has the largest (weighted) vote; the first candidate
    when none has an answer. Ties go to the answer seen first."""
    votes: dict[str, float] = {}
    for c in candidates:
        if c.answer is not None:
            key = vote_key(c.answer)
            votes[key] = votes.get(key, 0.0) + ((c.score or 0.0) if weighted else 1.0)
    if not votes:
        return candidates[0]
    winner = max(votes, key=votes.__getitem__)  # dicts keep insertion order: first seen wins ties
    return next(c for c in candidates if c.answer is not None and vote_key(c.answer) == winner)


# How each sampling strategy picks the answer that counts from its candidates. Evaluation
# reuses these on the first k candidates of a record to score smaller n without new calls.
SELECTORS: dict[str, Callable[[Sequence[Candidate]], Candidate]] = {
    "best_of_n": pick_best,
    "majority": pick_vote,
    "weighted_majority": partial(pick_vote, weighted=True),
}


# --------------------------------------------------------------------------- strategies


def run_single(backend: Backend, tasks: Sequence[Task], settings: StrategySettings) -> list[Attempt]:
    return [Attempt(c[0], tuple(c)) for c in sample_answers(backend, tasks, settings.sampling)]


def run_majority(backend: Backend, tasks: Sequence[Task], settings: StrategySettings) -> list[Attempt]:
    return [Attempt(pick_vote(c), tuple(c)) for c in sample_answers(backend, tasks, settings.sampling)]


def run_best_of_n(backend: Backend, tasks: Sequence[Task], settings: StrategySettings) -> list[Attempt]:
    scored = score_candidates(backend, tasks, sample_answers(backend, tasks, settings.sampling), settings)
    return [Attempt(pick_best(c), tuple(c)) for c in scored]


def run_weighted_majority(
    backend: Backend, tasks: Sequence[Task], settings: StrategySettings
) -> list[Attempt]:
    scored = score_candidates(backend, tasks, sample_answers(backend, tasks, settings.sampling), settings)
    return [Attempt(pick_vote(c, weighted=True), tuple(c)) for c in scored]


def revision_prompt(task: Task, answer: Candidate, settings: StrategySettings) -> str:
    if answer.answer is not None:
        return reflection_prompt(task.question, answer.answer, "answer", templates=settings.templates)
    return reflection_prompt(task.question, answer.text, "cot", templates=settings.templates)


def run_reflection(backend: Backend, tasks: Sequence[Task], settings: StrategySettings) -> list[Attempt]:
    """Answer, then judge-and-revise in lock step over the batch until every verdict is Yes
    or `rounds` revisions were made."""
    params = replace(settings.sampling, n=1)
    current = [c[0] for c in sample_answers(backend, tasks, params)]
    history: list[list[dict[str, Any]]] = [
        [{"round": 0, "answer": c.text, "extracted": c.answer}] for c in current
    ]
    active = list(range(len(tasks)))
    for round_index in range(1, settings.rounds + 1):
        judged = [i for i in active if current[i].answer is not None]
        answers = [str(current[i].answer) for i in judged]
        verdicts = judge_greedy(backend, [tasks[i] for i in judged], answers, settings)
        for i, verdict in zip(judged, verdicts):
            history[i][-1] |= {"judge": verdict.text, "verdict": YES if says_yes(verdict.text) else NO}
        for i in active:
            history[i][-1].setdefault("verdict", "no-answer")
        active = [i for i in active if history[i][-1]["verdict"] != YES]
        if not active:
            break
        revisions = [replace(tasks[i], prompt=revision_prompt(tasks[i], current[i], settings))
                     for i in active]
        for i, task, revised in zip(active, revisions, sample_answers(backend, revisions, params)):
            current[i] = revised[0]
            history[i].append({"round": round_index, "prompt": task.prompt,
                               "answer": revised[0].text, "extracted": revised[0].answer})
    return [Attempt(c, (c,), tuple(h)) for c, h in zip(current, history)]


StrategyFn = Callable[[Backend, Sequence[Task], StrategySettings], list[Attempt]]
STRATEGIES: dict[str, StrategyFn] = {
    "single": run_single,
    "reflection": run_reflection,
    "best_of_n": run_best_of_n,
    "majority": run_majority,
    "weighted_majority": run_weighted_majority,
}


def run_strategy(
    name: str, backend: Backend, tasks: Sequence[Task], settings: StrategySettings
) -> list[Attempt]:
    """One `Attempt` per task, in order."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose from {sorted(STRATEGIES)}")
    return STRATEGIES[name](backend, tasks, settings)
