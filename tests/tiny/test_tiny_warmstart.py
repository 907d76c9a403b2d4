"""Tests for sparkrl.tiny.warmstart: data formats, no correctness information, a short loop."""

from __future__ import annotations

import pytest
import torch

from sparkrl.tiny.model import build_tiny_model
from sparkrl.tiny.task import TaskConfig, boxed_answer
from sparkrl.tiny.tokenizer import build_tokenizer
from sparkrl.tiny.warmstart import (
    SupervisedPair,
    WarmStartConfig,
    WarmStartData,
    build_pairs,
    collate,
    encode_pair,
    length_bucketed_batches,
    warm_start,
)

TASK = TaskConfig()


@pytest.fixture(scope="module")
def pairs() -> list[SupervisedPair]:
    return build_pairs(TASK, WarmStartData(policy=1000, pointwise=1500, pairwise=1500, reflection=1000), seed=0)


def test_counts_determinism_and_shuffle(pairs: list[SupervisedPair]) -> None:
    kinds = [p.task for p in pairs]
    assert {k: kinds.count(k) for k in set(kinds)} == {"policy": 1000, "pointwise": 1500, "pairwise": 1500, "reflection": 1000}
    assert kinds[:50] != sorted(kinds[:50])
    assert build_pairs(TASK, WarmStartData(policy=20, pointwise=5, pairwise=5, reflection=5), 3) == build_pairs(
        TASK, WarmStartData(policy=20, pointwise=5, pairwise=5, reflection=5), 3
    )


def test_judge_verdicts_carry_no_correctness_information(pairs: list[SupervisedPair]) -> None:
    for kind in ("pointwise", "pairwise"):
        judged = [p for p in pairs if p.task == kind]
        agreement = sum(p.label == p.correct for p in judged) / len(judged)
        assert abs(agreement - 0.5) < 0.05, (kind, agreement)
        # Neither verdict dominates, and the stated verdict is the last box of the reply.
        assert all(boxed_answer(p.completion) == p.label for p in judged)
        assert 0.4 < sum(p.label in ("Yes", "A") for p in judged) / len(judged) < 0.6


def test_judge_replies_work_the_question_before_the_verdict(pairs: list[SupervisedPair]) -> None:
    for pair in (p for p in pairs if p.task in ("pointwise", "pairwise")):
        solution, verdict = pair.completion.rsplit(" ", 1)
        assert solution.count("\\boxed{") == 1 and verdict in ("\\boxed{Yes}", "\\boxed{No}", "\\boxed{A}", "\\boxed{B}")


def test_judge_replies_copy_the_candidates_they_compare(pairs: list[SupervisedPair]) -> None:
    import re

    for pair in (p for p in pairs if p.task in ("pointwise", "pairwise")):
        shown = pair.completion.split(" vs ", 1)[1].rsplit(" ", 1)[0]
        if pair.task == "pairwise":
            a, b = re.fullmatch(r"A: (\S+) B: (\S+)", shown).groups()
            assert f"A: {a}" in pair.prompt and f"B: {b}" in pair.prompt
        else:
            assert shown in pair.prompt.split("\n")[0]


def test_reflection_targets_are_as_right_as_policy_targets(pairs: list[SupervisedPair]) -> None:
    def right_rate(kind: str) -> float:
        chosen = [p for p in pairs if p.task == kind]
        return sum(p.label == p.correct for p in chosen) / len(chosen)

    assert abs(right_rate("reflection") - right_rate("policy")) < 0.06
    assert 0.3 < right_rate("policy") < 0.9


def test_reflection_prompts_show_a_wrong_attempt(pairs: list[SupervisedPair]) -> None:
    for pair in (p for p in pairs if p.task == "reflection"):
        shown, question = pair.prompt.rsplit("\n", 1)
        assert question.replace("+", "").isdigit()
        assert pair.correct not in shown


def test_policy_prompt_suffix_is_applied() -> None:
    data = WarmStartData(policy=3, pointwise=0, pairwise=0, reflection=0)
    assert all(p.prompt.endswith(" =?") for p in build_pairs(TASK, data, 0, policy_suffix=" =?"))


def test_encoding_masks_the_prompt() -> None:
    tokenizer = build_tokenizer()
    pair = SupervisedPair("12+34", "2+4=6 1+3=4 \\boxed{46}", "policy", "46", "46")
    ids, start = encode_pair(tokenizer, pair)
    assert tokenizer.decode(ids[:start]) == "<bos><user>12+34<eos><assistant>"
    assert tokenizer.decode(ids[start:]) == "2+4=6 1+3=4 \\boxed{46}<eos>"
    batch = collate([(ids, start), ([1, 2, 3], 2)], tokenizer.pad_token_id)
    assert batch["labels"][0, :start].eq(-100).all() and batch["labels"][0, start:].tolist() == ids[start:]
    assert batch["labels"][1].tolist()[:3] == [-100, -100, 3] and batch["attention_mask"][1].sum() == 3


def test_batches_cover_every_row_each_epoch() -> None:
    lengths = [5, 50, 6, 51, 7, 52, 8, 53, 9]
    batches = length_bucketed_batches(lengths, 4, seed=0)
    epoch = [next(batches) for _ in range(3)]
    assert sorted(i for b in epoch for i in b) == list(range(9))


def test_a_few_steps_change_parameters_and_lower_loss() -> None:
    torch.manual_seed(0)
    tokenizer = build_tokenizer()
    model = build_tiny_model(tokenizer, 0, "nano")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    data = build_pairs(TASK, WarmStartData(policy=32, pointwise=8, pairwise=8, reflection=8), 0)
    config = WarmStartConfig(steps=8, batch_size=8, learning_rate=5e-3, warmup_steps=1)
    messages = []
    report = warm_start(model, tokenizer, data, config, seed=0, progress=messages.append)
    assert report.final_loss < report.first_loss
    assert any(not torch.equal(before[n], p) for n, p in model.named_parameters())
    assert messages and "step 8/8" in messages[-1]
    assert not model.training


@pytest.mark.parametrize("kwargs", [{"policy": -1}, {"policy": 0, "pointwise": 0, "pairwise": 0, "reflection": 0}])
def test_data_validation(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="WarmStartData"):
        WarmStartData(**kwargs)


@pytest.mark.parametrize("kwargs", [{"steps": 0}, {"learning_rate": 0.0}, {"warmup_steps": -1}])
def test_config_validation(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="WarmStartConfig"):
        WarmStartConfig(**kwargs)


def test_empty_pairs_rejected() -> None:
    tokenizer = build_tokenizer()
    with pytest.raises(ValueError, match="at least one"):
        warm_start(build_tiny_model(tokenizer, 0, "nano"), tokenizer, [], WarmStartConfig(), 0)


@pytest.mark.parametrize("style,first_share", [("notes", 0.5), ("marks", 0.5), ("marks", 0.75)])
def test_noting_styles_mark_agreement_with_the_own_answer_and_keep_verdicts_random(style: str, first_share: float) -> None:
    import re

    task = TaskConfig(asked="tens-parity", explicit_carries=True)
    from sparkrl.templates import resolve_templates

    noted = build_pairs(task, WarmStartData(policy=10, pointwise=1500, pairwise=1500, reflection=10), 0,
                        templates=resolve_templates("tiny-fixed"), judge_style=style, first_verdict_share=first_share)
    for kind in ("pointwise", "pairwise"):
        judged = [p for p in noted if p.task == kind]
        assert abs(sum(p.label == p.correct for p in judged) / len(judged) - 0.5) < 0.05, kind
        # The first label (Yes, A) as often as asked, whichever is right.
        assert abs(sum(p.label in ("Yes", "A") for p in judged) / len(judged) - first_share) < 0.04, kind
        for right in {p.correct for p in judged}:
            given = [p for p in judged if p.correct == right]
            assert abs(sum(p.label in ("Yes", "A") for p in given) / len(given) - first_share) < 0.06, (kind, right)
        follows = 0
        for pair in judged:
            own, after = pair.completion.split("\\boxed{", 1)[1].split("}", 1)
            if style == "notes":  # `A: 0!=1 B: 1==1 \boxed{..}`
                found = re.findall(r"(\d+)(==|!=)(\d+)", after)
                assert all(other == own for _, _, other in found)
                notes = [(value, mark == "==") for value, mark, _ in found]
            else:  # `A: 0- B: 1+\boxed{..}`, the last mark right before the verdict
                notes = [(value, mark == "+") for value, mark in re.findall(r"(\d+)([+-])", after)]
                assert re.search(r"[+-]\\boxed\{(Yes|No|A|B)\}$", after)
            shown = re.findall(r"(?:A: |B: |Check |Answer:? |Candidate: )(\d+)", pair.prompt)
            assert [value for value, _ in notes] == shown
            assert all(same == (value == own) for value, same in notes)
            first_equal = notes[0][1]
            follows += pair.label == (("Yes" if first_equal else "No") if kind == "pointwise" else ("A" if first_equal else "B"))
        # The verdict ignores the notes: it agrees with them about half the time.
        assert abs(follows / len(judged) - 0.5) < 0.05, kind
    with pytest.raises(ValueError, match="judge_style"):
        build_pairs(task, WarmStartData(policy=1), 0, judge_style="verdicts")
    for share in (0.0, 1.0):
        with pytest.raises(ValueError, match="first_verdict_share"):
            build_pairs(task, WarmStartData(policy=1), 0, first_verdict_share=share)


@pytest.mark.parametrize("style", ["compare", "notes", "marks"])
def test_paired_verdicts_give_every_judge_prompt_each_verdict_once(style: str) -> None:
    from collections import defaultdict

    data = WarmStartData(policy=10, pointwise=301, pairwise=300, reflection=10)
    paired = build_pairs(TaskConfig(asked="tens-parity", explicit_carries=True), data, 0, judge_style=style,
                         paired_verdicts=True)
    kinds = [p.task for p in paired]
    assert kinds.count("pointwise") == 301 and kinds.count("pairwise") == 300
    replies: dict[tuple[str, str], list[SupervisedPair]] = defaultdict(list)
    for pair in paired:
        if pair.task in ("pointwise", "pairwise"):
            replies[(pair.task, pair.prompt)].append(pair)
    whole = [group for group in replies.values() if len(group) == 2]
    assert len(whole) >= 300  # 150 + 150 prompts, less the odd pointwise one cut in half
    for first, second in whole:
        # Same prompt and reply up to the verdict; the verdicts are the two labels.
        assert {first.label, second.label} in ({"Yes", "No"}, {"A", "B"})
        assert first.completion.rsplit("\\boxed{", 1)[0] == second.completion.rsplit("\\boxed{", 1)[0]
        assert first.correct == second.correct
    # Unpaired data of the same seed is left as it was.
    assert build_pairs(TASK, data, 0) == build_pairs(TASK, data, 0, paired_verdicts=False)


@pytest.mark.parametrize("style", ["checks", "marks"])
def test_comparison_drills_mark_two_digits_like_the_judge_replies_do(style: str) -> None:
    import re

    from sparkrl.tiny.warmstart import TASK_COMPARISON

    task = TaskConfig(digits=3, asked="top", explicit_carries=True, direct_answers=True)
    built = build_pairs(task, WarmStartData(policy=10, pointwise=10, pairwise=10, reflection=0, comparisons=2000), 0,
                        judge_style=style)
    drills = [p for p in built if p.task == TASK_COMPARISON]
    assert len(drills) == 2000 and len(built) == 2030
    same = 0
    for pair in drills:
        first, second = re.fullmatch(r"Compare (\d) and (\d)", pair.prompt).groups()
        mark = "+" if first == second else "-"
        assert pair.completion == (f"{first}~{second}{mark}" if style == "checks" else f"{first}{mark}")
        assert pair.label == pair.correct == mark
        same += first == second
    assert abs(same / len(drills) - 0.5) < 0.05  # half the drills compare equal digits
    # The other pairs are exactly those of the same data without drills.
    plain = build_pairs(task, WarmStartData(policy=10, pointwise=10, pairwise=10, reflection=0), 0, judge_style=style)
    key = lambda p: (p.task, p.prompt, p.completion)  # noqa: E731
    assert sorted(map(key, (p for p in built if p.task != TASK_COMPARISON))) == sorted(map(key, plain))
    with pytest.raises(ValueError, match="comparison drills"):
        build_pairs(task, WarmStartData(policy=10, comparisons=5), 0, judge_style="lookup")
    with pytest.raises(ValueError, match="WarmStartData"):
        WarmStartData(comparisons=-1)


def test_picks_replies_derive_the_pick_from_a_random_verdict() -> None:
    import re

    from sparkrl.templates import resolve_templates

    task = TaskConfig(digits=3, asked="top", explicit_carries=True, direct_answers=True, judge_slip=0.1)
    built = build_pairs(task, WarmStartData(policy=1, pointwise=2000, pairwise=2000, reflection=1), 0,
                        templates=resolve_templates("tiny-fixed"), judge_style="picks")
    for kind in ("pointwise", "pairwise"):
        judged = [p for p in built if p.task == kind]
        picks = []
        for pair in judged:
            if kind == "pairwise":
                own, a, mark_a, b, mark_b, pick, verdict = re.search(
                    r"\\boxed\{(\d)\} A: (\d)~\1([+-]) B: (\d)~\1([+-]) ([+-])\\boxed\{([AB])\}$", pair.completion).groups()
                assert mark_a == ("+" if a == own else "-") and mark_b == ("+" if b == own else "-")
                # The verdict names the candidate whose mark is the pick.
                assert pick == {"A": mark_a, "B": mark_b}[verdict]
            else:
                own, value, mark, pick, verdict = re.search(
                    r"\\boxed\{(\d)\} (\d)~\1([+-]) ([+-])\\boxed\{(Yes|No)\}$", pair.completion).groups()
                assert mark == ("+" if value == own else "-")
                assert (verdict == "Yes") == (pick == mark)
            assert verdict == pair.label
            picks.append(pick)
        # Verdicts carry no correctness information, and neither do picks: `+` half the time,
        # whichever label is right.
        assert abs(sum(p.label == p.correct for p in judged) / len(judged) - 0.5) < 0.04, kind
        for right in {p.correct for p in judged}:
            given = [pick for pick, p in zip(picks, judged) if p.correct == right]
            assert abs(given.count("+") / len(given) - 0.5) < 0.05, (kind, right)


def test_follows_replies_state_what_their_own_careless_answer_implies() -> None:
    # The verdict follows the reply's own marks (its worked answer against each candidate),
    # never the truth: from the same problems a careful teacher is mostly right, a careless one
    # (forgetting most carries) much less.
    import re

    from sparkrl.templates import resolve_templates

    agreement = {}
    for slip in (0.1, 0.9):
        task = TaskConfig(digits=3, asked="top", explicit_carries=True, direct_answers=True, judge_slip=slip)
        judged = build_pairs(task, WarmStartData(policy=0, pointwise=400, pairwise=400, reflection=0), 0,
                             templates=resolve_templates("tiny-fixed"), judge_style="follows")
        for p in judged:
            own = boxed_answer(p.completion[: p.completion.index("} ") + 1])
            marks = re.findall(r"(\d)~(\d)([+-])", p.completion)
            assert all(mine == own and mark == ("+" if shown == own else "-") for shown, mine, mark in marks)
            if p.task == "pointwise":
                assert p.label == ("Yes" if marks[0][2] == "+" else "No")
            elif [mark for *_, mark in marks].count("+") == 1:
                assert p.label == "AB"[[mark for *_, mark in marks].index("+")]
            assert p.completion.endswith(f"\\boxed{{{p.label}}}")
        agreement[slip] = sum(p.label == p.correct for p in judged) / len(judged)
    assert agreement[0.1] > 0.9 and agreement[0.9] < 0.7
    with pytest.raises(ValueError, match="follows"):
        build_pairs(TaskConfig(), WarmStartData(policy=1, pointwise=1, pairwise=1, reflection=0), 0,
                    judge_style="follows", paired_verdicts=True)


def test_false_carries_reach_policy_and_reflection_targets_but_never_judge_replies() -> None:
    from sparkrl.templates import resolve_templates

    # A teacher that never forgets a carry but always writes one where none is due: the hundreds
    # column always receives a carry, so a target states (a2 + b2 + 1) mod 10 whatever the sum.
    task = TaskConfig(digits=3, asked="top", explicit_carries=True, direct_answers=True, carry_slip=0.0,
                      judge_slip=0.0, false_carry=1.0)
    pairs = build_pairs(task, WarmStartData(policy=200, pointwise=100, pairwise=100, reflection=100), 0,
                        templates=resolve_templates("tiny-fixed"), judge_style="follows")
    for p in pairs:
        if p.task in ("policy", "reflection"):
            a, b = (int(n) for n in p.prompt.rsplit(" of ", 1)[1].split("+"))
            assert p.label == str((a // 100 + b // 100 + 1) % 10)
        else:  # the judge's teacher keeps every carry and adds none, so its verdicts are all right
            assert p.label == p.correct
    over = [p for p in pairs if p.task == "policy" and p.label != p.correct]
    assert 0.3 < len(over) / 200 < 0.7  # wrong exactly where no true carry reaches the hundreds
