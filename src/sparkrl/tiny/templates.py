"""Compact judge and reflection templates for the tiny task.

The default pools in `sparkrl.templates` are written for real LLMs and run to a hundred
words; the tiny model would pay for each character. These say the same things in a few
words, every word of which is a single token of the tiny tokenizer (see
`sparkrl.tiny.tokenizer.WORDS`). There are still several paraphrases per family, so RL
cannot key on one phrasing, and every template asks for the result in `\\boxed{}`.

Every template ends with the question, on its own line. The tiny model (rotary position
embeddings) finds the digits it adds by their distance from the end of the prompt; with the
question last, judge and reflection prompts put them exactly where a policy prompt does, so
the worked solution a judge writes before its verdict is as good as a policy answer. With the
question first, the warm-started model solved policy prompts but wrote nonsense in judge
prompts, which would have left RL both the arithmetic and the comparison to learn there.
"""

from __future__ import annotations

from sparkrl.templates import TemplateSet

TINY_TEMPLATES = TemplateSet(
    pointwise=(
        "Answer: {candidate}\nIs it correct? \\boxed{{Yes}} or \\boxed{{No}}\n{question}",
        "Check {candidate}\nPut Yes or No in \\boxed{{}}\n{question}",
        "Candidate: {candidate}\nIs this right? \\boxed{{Yes}} or \\boxed{{No}}\n{question}",
        "Is {candidate} the answer? Give Yes or No in \\boxed{{}}\n{question}",
    ),
    pointwise_letter=(
        "Answer: {candidate}\nA: correct B: wrong\nPut A or B in \\boxed{{}}\n{question}",
        "Check {candidate}\n\\boxed{{A}} if right, \\boxed{{B}} if wrong\n{question}",
        "Candidate: {candidate}\nIs it A: right or B: wrong? \\boxed{{}}\n{question}",
    ),
    pairwise=(
        "A: {candidate_a}\nB: {candidate_b}\nWhich is correct? Put A or B in \\boxed{{}}\n{question}",
        "Candidate A: {candidate_a}\nCandidate B: {candidate_b}\nPick the right one in \\boxed{{}}\n{question}",
        "Compare A: {candidate_a} and B: {candidate_b}\nWhich is right? \\boxed{{A}} or \\boxed{{B}}\n{question}",
        "Which answer is correct, A: {candidate_a} or B: {candidate_b}? \\boxed{{}}\n{question}",
    ),
    reflection_cot=(
        "Attempt: {attempt}\nIt is wrong. Solve again in \\boxed{{}}\n{question}",
        "This attempt is wrong: {attempt}\nFix it, answer in \\boxed{{}}\n{question}",
        "Earlier attempt: {attempt}\nThe answer was wrong. Try again in \\boxed{{}}\n{question}",
    ),
    reflection_answer=(
        "Answer {attempt} is wrong. Solve again in \\boxed{{}}\n{question}",
        "Not {attempt}. Try again, answer in \\boxed{{}}\n{question}",
        "Earlier answer {attempt} was wrong. Solve it again in \\boxed{{}}\n{question}",
    ),
)


# The same families with the candidates on one line just before the question, after the
# instruction. With one-token answers and solutions of one length (`TaskConfig(asked="tens",
# explicit_carries=True)`), every candidate, the question and the judge's own answer then sit
# at the same distance from the verdict in every prompt; `bench/probe_judge_learning.py`
# measures what that changes for the tiny model.
TINY_FIXED_TEMPLATES = TemplateSet(
    pointwise=(
        "Is it correct? \\boxed{{Yes}} or \\boxed{{No}}\nAnswer: {candidate}\n{question}",
        "Put Yes or No in \\boxed{{}}\nCheck {candidate}\n{question}",
        "Is this right? \\boxed{{Yes}} or \\boxed{{No}}\nCandidate: {candidate}\n{question}",
        "Is it the answer? Give Yes or No in \\boxed{{}}\nAnswer {candidate}\n{question}",
    ),
    pointwise_letter=(
        "A: correct B: wrong\nPut A or B in \\boxed{{}}\nAnswer: {candidate}\n{question}",
    ),
    pairwise=(
        "Which is correct? Put A or B in \\boxed{{}}\nA: {candidate_a} B: {candidate_b}\n{question}",
        "Pick the right one in \\boxed{{}}\nA: {candidate_a} B: {candidate_b}\n{question}",
        "Which is right? \\boxed{{A}} or \\boxed{{B}}\nA: {candidate_a} B: {candidate_b}\n{question}",
        "Which answer is correct? \\boxed{{}}\nA: {candidate_a} B: {candidate_b}\n{question}",
    ),
    reflection_cot=TINY_TEMPLATES.reflection_cot,
    reflection_answer=TINY_TEMPLATES.reflection_answer,
)
