from collections import defaultdict

import pytest

from sparkrl.rewards import ExtraReward, RewardRouter, completion_text, extra_rewards, import_function
from sparkrl.verification import Verdict


def _call(router, completions, answers, tasks, **columns):
    logged = defaultdict(list)
    scores = router(
        prompts=[None] * len(completions),
        completions=[[{"role": "assistant", "content": c}] for c in completions],
        answer=answers,
        task=tasks,
        log_metric=lambda name, value: logged[name].append(value),
        **columns,
    )
    return scores, logged


def test_each_task_goes_to_its_verifier():
    router = RewardRouter(timeout_s=2.0)
    scores, logged = _call(
        router,
        ["so \\boxed{4}", "\\boxed{5}", "judging... \\boxed{Yes}", "\\boxed{(B)}", "fixed: \\boxed{12}"],
        ["4", "4", "No", "B", "12"],
        ["policy", "policy", "pointwise", "pairwise", "reflection"],
    )
    assert scores == [1.0, 0.0, 0.0, 1.0, 1.0]
    assert [row.verdict.extracted for row in router.last_rows][:2] == ["4", "5"]
    assert logged["spark/policy_reward"] == [1.0, 0.0]
    assert logged["spark/pointwise_accuracy"] == [0.0]
    assert logged["spark/pairwise_accuracy"] == [1.0]
    assert logged["spark/reflection_success"] == [1.0]
    # shares are logged on every row for every task, so each averages to the task's share
    shares = {name: sum(v) / len(v) for name, v in logged.items() if name.startswith("spark/share_")}
    assert shares["spark/share_policy"] == pytest.approx(0.4)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert logged["spark/pointwise_label_positive"] == [0.0]
    assert logged["spark/pairwise_label_a"] == [0.0]


def test_user_verifier_by_import_path_and_callable():
    router = RewardRouter(extra={"length": "tests.test_rewards:_length_verifier"})
    router.register("always", lambda completion, answer, row: Verdict(1.0, None, "always"))
    scores, _ = _call(router, ["abc", "zzz"], ["3", "ignored"], ["length", "always"], extra_col=["x", "y"])
    assert scores == [1.0, 1.0]
    assert router.last_rows[0].verdict.reason == "custom"


def _length_verifier(completion, answer, row):
    assert row["extra_col"] == "x"  # user verifiers see the row's other columns
    return float(len(completion) == int(answer))


def test_unknown_task_and_bad_paths_are_explained():
    router = RewardRouter()
    with pytest.raises(ValueError, match="no verifier for task 'mystery'"):
        _call(router, ["x"], ["1"], ["mystery"])
    with pytest.raises(ValueError, match="module:function"):
        import_function("no_colon")
    with pytest.raises(ValueError, match="cannot import"):
        import_function("not_a_module_xyz:f")
    with pytest.raises(ValueError, match="has no"):
        import_function("sparkrl.rewards:nothing_here")


def test_completion_text_handles_strings_and_blocks():
    assert completion_text("plain") == "plain"
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "image"}]}]) == "a"


def _constant(prompts, completions, **columns):
    return [0.5] * len(completions)


def test_extra_reward_scores_only_its_tasks_and_sees_every_row():
    seen = []

    def spy(prompts, completions, **columns):
        seen.append(columns["task"])
        return [0.5] * len(completions)

    policy_only = ExtraReward(spy, ["policy"], "spy")
    tasks = ["policy", "pointwise", "policy", "reflection"]
    assert policy_only([None] * 4, ["a"] * 4, task=tasks) == [0.5, None, 0.5, None]
    assert seen == [tasks]  # the whole batch, so per-row hooks stay aligned with TRL's rows
    assert ExtraReward(_constant, None, "c")([None] * 2, ["a", "b"], task=["policy", "pairwise"]) == [0.5, 0.5]
    with pytest.raises(ValueError, match="'short' returned 1 values for 2 completions"):
        ExtraReward(lambda p, c, **k: [1.0], None, "short")([None] * 2, ["a", "b"], task=["policy"] * 2)


def test_extra_rewards_are_named_for_trl_logs_one_name_per_function():
    from trl.trainer.utils import get_callable_name  # how TRL names `rewards/<name>/mean`

    wrapped = extra_rewards([
        ("sparkrl.shaping:boxed_format", ("policy",)),
        ("sparkrl.shaping:boxed_format", None),
        ("sparkrl.shaping:length_penalty", None),
    ])
    assert [get_callable_name(w) for w in wrapped] == ["boxed_format", "boxed_format_2", "length_penalty"]
    assert get_callable_name(RewardRouter()) == "spark_reward"
    with pytest.raises(ValueError, match="reward function 'sparkrl.shaping:nothing'"):
        extra_rewards([("sparkrl.shaping:nothing", None)])


def test_open_rows_go_to_the_self_judging_hook_with_the_verified_rows_beside_them():
    from sparkrl.rewards import SelfJudgedScore

    router = RewardRouter(timeout_s=2.0)
    with pytest.raises(ValueError, match="spark.self_reward"):
        _call(router, ["\\boxed{1}"], [""], ["open"])
    seen = []

    def hook(call):
        seen.append(call)
        return [SelfJudgedScore(0.25 * (i + 1), None, "self-judged-pointwise") for i in range(call.tasks.count("open"))]

    router.self_judge = hook
    scores, logged = _call(router, ["\\boxed{4}", "a", "b", "\\boxed{5}"], ["4", "", "", "4"],
                           ["policy", "open", "open", "policy"], example=["e1", "e2", "e2", "e1"],
                           completion_ids=[[1], [2, 3], [4], [5, 6, 7]])
    assert scores == [1.0, 0.25, 0.5, 0.0]
    (call,) = seen
    assert call.examples == ("e1", "e2", "e2", "e1") and call.completion_tokens == (1, 2, 1, 3)
    assert [v is None for v in call.verdicts] == [False, True, True, False] and call.verdicts[0].score == 1.0
    assert logged["spark/open_reward"] == [0.25, 0.5] and logged["spark/policy_reward"] == [1.0, 0.0]
    assert sum(logged["spark/share_open"]) == 2.0
    router.self_judge = lambda call: []
    with pytest.raises(RuntimeError, match="scored 0 of 2 open rows"):
        _call(router, ["a", "b"], ["", ""], ["open", "open"])
