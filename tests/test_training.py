"""The SPARK trainer: pure helpers, and real training of the tiny model on CPU."""

import json
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from transformers import TrainerControl

from sparkrl.config import PromptConfig, SparkConfig, config_from_mapping
from sparkrl.rewards import ScoredRow
from sparkrl.rows import Example
from sparkrl.schedule import RoundState
from sparkrl.recycling import Group, RecyclingConfig, Rollout, recycle
from sparkrl.training import (
    StopAfterPolicySteps,
    chat_overhead,
    example_row,
    prompt_token_limit,
    recycled_prompt_budget,
    rollout_groups,
    round_seed,
    text_token_counter,
    unique_prompts,
)
from sparkrl.verification import Verdict

REPO = Path(__file__).resolve().parents[1]


def test_policy_rows_get_the_suffix_and_recycled_rows_do_not():
    prompt = PromptConfig(suffix="Box it.", system="Be brief.")
    policy = example_row(Example("1+1", "2"), prompt)
    judge = example_row(Example("Is 2 right?", "Yes", task="pointwise"), prompt)
    assert policy["prompt"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "1+1\n\nBox it."},
    ]
    assert judge["prompt"][-1]["content"] == "Is 2 right?"
    assert policy.keys() == judge.keys()  # TRL reads reward columns from the first row's keys
    assert Example.from_dict(json.loads(judge["example"])).task == "pointwise"


def test_unique_prompts_checks_group_structure():
    a, b = example_row(Example("a", "1"), PromptConfig()), example_row(Example("b", "2"), PromptConfig())
    assert unique_prompts([a, a, b, b], 2) == [a, b]
    with pytest.raises(RuntimeError, match="mixes"):
        unique_prompts([a, b, b, b], 2)
    with pytest.raises(RuntimeError, match="groups of 3"):
        unique_prompts([a, a], 3)


def test_rollout_groups_recycles_policy_groups_only_by_default():
    prompt = PromptConfig()
    rows = [example_row(Example("q", "4"), prompt)] * 2 + [example_row(Example("j", "Yes", task="pointwise"), prompt)] * 2
    scored = [
        ScoredRow("policy", "\\boxed{4}", Verdict(1.0, "4", "math")),
        ScoredRow("policy", "\\boxed{5}", Verdict(0.0, "5", "mismatch")),
        ScoredRow("pointwise", "\\boxed{Yes}", Verdict(1.0, "Yes", "label")),
        ScoredRow("pointwise", "\\boxed{No}", Verdict(0.0, "No", "label")),
    ]
    groups = rollout_groups(rows, scored, 2, recycle_recycled=False)
    assert len(groups) == 1
    assert [(r.reward, r.answer) for r in groups[0].rollouts] == [(1.0, "4"), (0.0, "5")]
    assert groups[0].question == "q" and groups[0].answer == "4"
    assert len(rollout_groups(rows, scored, 2, recycle_recycled=True)) == 2


def test_round_seeds_differ_by_round_and_run():
    assert len({round_seed(s, r) for s in range(3) for r in range(50)}) == 150


def test_training_stops_at_the_end_of_the_last_policy_round_not_inside_it():
    trainer = SimpleNamespace(round_state=RoundState(policy_rounds=3), spark=SparkConfig(policy_steps=3))
    stop = StopAfterPolicySteps(trainer, steps_per_round=2)
    # the third policy round was generated before step 9; its second step is step 10
    assert not stop.on_step_end(None, SimpleNamespace(global_step=9), TrainerControl()).should_training_stop
    assert stop.on_step_end(None, SimpleNamespace(global_step=10), TrainerControl()).should_training_stop


def test_recycled_prompts_fit_the_budget_in_the_tokenizers_tokens():
    from sparkrl.tiny.templates import TINY_TEMPLATES
    from sparkrl.tiny.tokenizer import build_tokenizer

    tokenizer = build_tokenizer()
    count = text_token_counter(tokenizer)
    assert count("Is it correct?") == 6  # words, spaces and "?" are single tokens of the tiny tokenizer
    attempt = "3+4 is 3 and 4 more. " * 20 + "\\boxed{8}"
    group = Group("3+4=", "7", (Rollout(attempt, 0.0, "8"), Rollout("\\boxed{7}", 1.0, "7")))
    config = RecyclingConfig(templates=TINY_TEMPLATES, reflection_modes=("cot",), max_prompt_tokens=100,
                             min_attempt_tokens=4)
    items, stats = recycle([group], config, seed=0, count_tokens=count)
    cot = [item for item in items if item.source["mode"] == "cot"]
    assert cot and all(count(item.question) <= 100 for item in items)
    (item,) = cot
    marker = re.search(r"\n\[\.\.\. (\d+) tokens omitted \.\.\.\]\n", item.question)
    assert int(marker.group(1)) == item.source["tokens_omitted"] == stats.budget["tokens_omitted"]
    assert 300 < int(marker.group(1)) <= count(attempt)
    assert "3+4 is 3" in item.question and "\\boxed{8}" in item.question  # the head and the wrong conclusion
    assert stats.budget["longest_prompt"] == max(count(i.question) for i in items) <= 100


def test_the_prompt_budget_leaves_room_for_the_completion_in_the_models_context():
    from sparkrl.tiny.model import build_tiny_model
    from sparkrl.tiny.tokenizer import build_tokenizer

    tokenizer = build_tokenizer()
    model = build_tiny_model(tokenizer, seed=0, size="nano")
    overhead = chat_overhead(tokenizer, None)
    # a prompt as TRL tokenizes it is the text's tokens plus the overhead
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "Is 7 right?"}], add_generation_prompt=True,
                                             return_dict=True)
    assert len(rendered["input_ids"]) == overhead + text_token_counter(tokenizer)("Is 7 right?")
    assert chat_overhead(tokenizer, "Be brief.") > overhead
    args = SimpleNamespace(max_completion_length=40, use_vllm=False, vllm_max_model_length=None)
    context = model.config.max_position_embeddings
    assert prompt_token_limit(args, model.config, overhead) == (context, context - 40 - overhead)
    vllm = SimpleNamespace(max_completion_length=40, use_vllm=True, vllm_max_model_length=100)
    assert prompt_token_limit(vllm, model.config, 4) == (100, 56)
    assert prompt_token_limit(args, SimpleNamespace(), 4) is None
    with pytest.raises(ValueError, match="leave no room"):
        prompt_token_limit(SimpleNamespace(max_completion_length=context, use_vllm=False), model.config, 4)
    # the configured budget holds unless the context leaves less
    assert recycled_prompt_budget(RecyclingConfig(max_prompt_tokens=50), 200).max_prompt_tokens == 50
    assert recycled_prompt_budget(RecyclingConfig(max_prompt_tokens=500), 200).max_prompt_tokens == 200
    assert recycled_prompt_budget(RecyclingConfig(), None).max_prompt_tokens is None


# ---------------------------------------------------------------------------------------
# Real training of the warm-started tiny model (CPU).

TRAIN_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import torch
    torch.set_num_threads(1)
    from sparkrl.config import config_from_mapping
    from sparkrl.runs import run_training
    from sparkrl.tiny.templates import TINY_TEMPLATES
    from transformers import TrainerCallback

    class DieAt(TrainerCallback):
        def __init__(self, step): self.step = step
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == self.step:
                os._exit(17)  # a kill: no clean shutdown, no extra save

    spec = json.loads(sys.argv[1])
    config = config_from_mapping(spec["config"])
    config.spark.recycling["templates"] = TINY_TEMPLATES
    resume = spec.get("resume")
    if spec.get("die_at"):
        import sparkrl.training as training
        original = training.SparkGRPOTrainer.__init__
        def init(self, *a, **k):
            original(self, *a, **k)
            self.add_callback(DieAt(spec["die_at"]))
        training.SparkGRPOTrainer.__init__ = init
    trainer = run_training(config, resume=resume)
    print("FINAL", trainer.state.global_step, len(trainer.round_state.pool))
    """
)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A warm-started tiny model folder (about 20 s on 2 cores) and a train file."""
    import torch

    from sparkrl.data import examples_to_jsonl
    from sparkrl.tiny.model import build_tiny_model
    from sparkrl.tiny.task import TaskConfig, generate_examples
    from sparkrl.tiny.tokenizer import build_tokenizer
    from sparkrl.tiny.warmstart import WarmStartConfig, WarmStartData, build_pairs, warm_start

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny")
    task = TaskConfig(digits=1, carry_slip=0.5)
    tokenizer = build_tokenizer()
    model = build_tiny_model(tokenizer, seed=0, size="nano")
    pairs = build_pairs(task, WarmStartData(policy=800, pointwise=200, pairwise=200, reflection=200), seed=0)
    warm_start(model, tokenizer, pairs, WarmStartConfig(steps=250, batch_size=32), seed=0, progress=None)
    model.save_pretrained(folder / "model")
    tokenizer.save_pretrained(folder / "model")
    examples_to_jsonl(generate_examples(task, "train", 36, seed=1), folder / "train.jsonl")
    return folder


def _spec(folder, out, **spark):
    return {"config": {
        "model": {"path": str(folder / "model")},
        "data": {"train": str(folder / "train.jsonl")},
        "output_dir": str(out),
        "seed": 0,
        "prompt": {"suffix": ""},
        "spark": {"schedule": "alternate", "policy_steps": 3, **spark},
        "grpo": {
            "num_generations": 4,
            "per_device_train_batch_size": 16,
            "max_completion_length": 40,
            "learning_rate": 2e-4,
            "logging_steps": 1,
            "save_steps": 2,
            "report_to": [],
            "use_cpu": True,
        },
    }}


def _run(spec, launcher=(sys.executable,), check=True):
    result = subprocess.run(
        [*launcher, "-c", TRAIN_SCRIPT, json.dumps(spec)] if launcher == (sys.executable,)
        else [*launcher, str(_script_file(spec)), json.dumps(spec)],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"training failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result


def _script_file(spec):
    path = Path(spec["config"]["output_dir"]).with_suffix(".train.py")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TRAIN_SCRIPT)
    return path


def _rounds(out, rank=0):
    lines = (Path(out) / "spark_rounds" / f"rank-{rank}.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_recycled_items_of_every_kind_are_built_trained_and_verified(tiny_model, tmp_path):
    out = tmp_path / "run"
    spec = _spec(tiny_model, out, policy_steps=4)
    spec["config"]["grpo"].update(per_device_train_batch_size=32, save_steps=1)  # 8 prompts per round
    _run(spec)
    rounds = _rounds(out)
    recycled_rounds = [r for r in rounds if r["recycled"]]
    assert recycled_rounds and all(set(r["tasks"]) <= {"pointwise", "pairwise", "reflection"} for r in recycled_rounds)
    trained = {task for r in recycled_rounds for task in r["tasks"]}
    assert trained == {"pointwise", "pairwise", "reflection"}
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    recycled_steps = [m for m in metrics if m.get("spark/share_policy") == 0.0]
    # each recycled step was rewarded by the label verifier (judges) and the math verifier (reflection)
    assert any("spark/pointwise_accuracy" in m for m in recycled_steps)
    assert any("spark/pairwise_accuracy" in m for m in recycled_steps)
    assert any("spark/reflection_success" in m for m in recycled_steps)
    # and the model learnt from a recycled-only round (one optimizer step here): its gradient was
    # not zero and its parameters changed over that step (checkpoints are saved every step; the
    # gradient check matters too, because Adam's momentum alone would also move the parameters)
    step = recycled_rounds[0]["global_step"] + 1
    logged = next(m for m in metrics if m["step"] == step and "grad_norm" in m)
    assert logged["spark/share_policy"] == 0.0 and float(logged["grad_norm"]) > 0
    before, after = _weights(out / f"checkpoint-{step - 1}"), _weights(out / f"checkpoint-{step}")
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[name], after[name]) for name in before)
    assert (out / "config.yaml").exists() and (out / "final" / "config.json").exists()


def _weights(checkpoint):
    from safetensors.torch import load_file

    return load_file(checkpoint / "model.safetensors")


def test_plain_grpo_is_the_same_run_without_recycling(tiny_model, tmp_path):
    out = tmp_path / "grpo"
    _run(_spec(tiny_model, out, schedule="off"))
    rounds = _rounds(out)
    assert len(rounds) == 3 and all(r["recycled"] == 0 for r in rounds)
    assert {task for r in rounds for task in r["tasks"]} == {"policy"}


def test_mix_rounds_share_slots_and_defer_displaced_dataset_prompts(tiny_model, tmp_path):
    # 8 prompt slots per round, one optimizer step per round; mix_share 0.375 -> 3 recycled slots
    share, slots, policy_steps = 0.375, 8, 4
    mix, off = tmp_path / "mix", tmp_path / "off"
    spec = _spec(tiny_model, mix, schedule="mix", mix_share=share, policy_steps=policy_steps)
    spec["config"]["grpo"].update(per_device_train_batch_size=32, save_steps=policy_steps)
    _run(spec)
    # the same loader (same seed and batch shape) under plain GRPO: the order prompts are delivered in
    _run({**spec, "config": {**spec["config"], "output_dir": str(off), "spark": {"schedule": "off",
                                                                                  "policy_steps": policy_steps}}})
    rounds = _rounds(mix)
    metrics = {m["step"]: m for m in map(json.loads, (mix / "metrics.jsonl").read_text().splitlines()) if "loss" in m}
    # under mix every round holds dataset prompts, so policy_steps counts every round
    assert [r["global_step"] for r in rounds] == list(range(policy_steps))
    assert rounds[0]["recycled"] == 0  # nothing waits before the first round
    for r in rounds:
        logged = metrics[r["global_step"] + 1]
        waiting = int(logged["spark/pool_waiting"])
        assert r["recycled"] == min(round(share * slots), waiting)
        tasks = r["tasks"]
        assert len(tasks) == slots and set(tasks[: r["recycled"]]) <= {"pointwise", "pairwise", "reflection"}
        assert set(tasks[r["recycled"] :]) == {"policy"}
        # per-task metrics describe what the round trained on (shares over the whole batch)
        for task in ("policy", "pointwise", "pairwise", "reflection"):
            assert logged[f"spark/share_{task}"] == pytest.approx(tasks.count(task) / slots)
    assert any(0 < r["recycled"] < slots for r in rounds)  # rounds mixing both kinds did happen
    # displaced dataset prompts are deferred, not dropped: the prompts trained, then the ones
    # still deferred at the end, are exactly the loader's prompts, in order, each once
    delivered = [item for r in _rounds(off) for item in r["items"]]
    trained = [item for r in rounds for item in r["items"][r["recycled"] :]]
    state = json.loads((mix / f"checkpoint-{policy_steps}" / "sparkrl_state.json").read_text())
    deferred = [row["example"] for row in state["deferred"]]
    assert trained + deferred == delivered and len(set(delivered)) == slots * policy_steps
    # so mix trains fewer dataset prompts than plain GRPO at equal policy_steps: one fewer per recycled slot
    assert len(deferred) == sum(r["recycled"] for r in rounds) == state["items_trained"] > 0


def test_killed_run_resumes_with_its_waiting_pool(tiny_model, tmp_path):
    # Two optimizer steps per round (steps_per_generation=2): the kill falls inside a round, and
    # checkpoints (save_steps=2) fall between rounds, as sparkrl requires.
    out = tmp_path / "resumed"
    spec = _spec(tiny_model, out)
    spec["config"]["grpo"].update(per_device_train_batch_size=8, steps_per_generation=2)  # 4 prompts per round
    killed = _run({**spec, "die_at": 7}, check=False)
    assert killed.returncode == 17, killed.stderr[-2000:]
    saved = json.loads((out / "checkpoint-6" / "sparkrl_state.json").read_text())
    before = _rounds(out)
    assert len(before) == 4  # rounds 0-3 ran; round 3 is lost with the kill after its first step
    resumed = _run({**spec, "resume": True})
    after = _rounds(out)[4:]
    # the run picks up at round 3, and the pool waiting at checkpoint 6 is trained first (FIFO)
    assert after[0]["round"] == saved["rounds"] == 3 and after[0]["global_step"] == 6
    first_recycled = next(r for r in after if r["recycled"])
    k = min(first_recycled["recycled"], len(saved["pool"]))
    assert k > 0 and first_recycled["items"][:k] == [example_row_json(item) for item in saved["pool"][:k]]
    # no recycled item is trained twice over the killed and the resumed halves of the run
    rounds = before[:3] + after
    trained = [item for r in rounds if r["recycled"] for item in r["items"]]
    assert len(trained) == len(set(trained))
    # every round, the last policy round included, is trained for both of its optimizer steps
    final = resumed.stdout.split("FINAL")[1].split()
    assert [r["global_step"] for r in rounds] == [2 * i for i in range(len(rounds))]
    assert int(final[0]) == 2 * len(rounds) and sum(not r["recycled"] for r in rounds) == 3
    uninterrupted = tmp_path / "whole"
    whole = _run({**spec, "config": {**spec["config"], "output_dir": str(uninterrupted)}})
    assert final[0] == whole.stdout.split("FINAL")[1].split()[0]  # same number of optimizer steps
    assert [r["recycled"] > 0 for r in rounds] == [r["recycled"] > 0 for r in _rounds(uninterrupted)]


PHASES = ("generation", "scoring", "preparation", "recycling", "optimizer")


def test_the_logs_say_where_each_round_goes_and_recycled_prompts_keep_their_budget(tiny_model, tmp_path):
    from sparkrl.tiny.tokenizer import build_tokenizer

    # tiny prompts run to about 40 tokens, and the marker alone takes 25: this budget drops some
    out, budget = tmp_path / "timed", 32
    started = time.monotonic()
    result = _run(_spec(tiny_model, out, recycling={"max_prompt_tokens": budget, "min_attempt_tokens": 2}))
    wall = time.monotonic() - started
    assert f"[sparkrl] recycled prompts: at most {budget} tokens of text" in result.stdout
    steps = [m for m in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "loss" in m]
    for logged in steps:  # one optimizer step per round and a log line per step: a line per round
        times = {phase: logged[f"spark/time/{phase}_s"] for phase in PHASES}
        assert all(seconds >= 0 for seconds in times.values())
        assert times["generation"] > 0 and times["scoring"] > 0 and times["optimizer"] > 0
        assert sum(times.values()) <= logged["spark/time/interval_s"]
        assert 0 <= logged["spark/no_signal_groups"] <= 1
    assert sum(m["spark/time/interval_s"] for m in steps) < wall
    # every recycled prompt trained fits the budget in the model's own tokens, and the logs say what it cost
    count = text_token_counter(build_tokenizer())
    recycled = [Example.from_dict(json.loads(item)) for r in _rounds(out) for item in r["items"][: r["recycled"]]]
    assert recycled and all(count(item.question) <= budget for item in recycled)
    assert all("spark/recycled_last_round/budget/shortened" in m for m in steps)
    assert any(m.get("spark/recycled_last_round/skipped/over-budget", 0) > 0 for m in steps)


def test_rounds_without_learning_signal_are_logged_and_warned_about_once(tiny_model, tmp_path):
    # An answer the model never gives: every policy rollout scores 0, so no policy group has signal.
    rows = [json.loads(line) for line in (tiny_model / "train.jsonl").read_text().splitlines()]
    train = tmp_path / "unreachable.jsonl"
    train.write_text("".join(json.dumps({**row, "answer": "-999"}) + "\n" for row in rows))
    out = tmp_path / "flat"
    spec = _spec(tiny_model, out)
    spec["config"]["data"]["train"] = str(train)
    result = _run(spec)
    steps = [m for m in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "loss" in m]
    policy = [m for m in steps if m["spark/share_policy"] == 1.0]
    assert len(policy) == 3 and all(m["spark/no_signal_groups/policy"] == 1.0 for m in policy)
    assert all(m["frac_reward_zero_std"] == m["spark/no_signal_groups"] == 1.0 for m in policy)  # TRL agrees
    warnings = [line for line in result.stderr.splitlines() if "policy groups (100%)" in line]
    assert len(warnings) == 1 and "round 0" in warnings[0] and "Mean reward 0.000" in warnings[0]
    assert "too hard" in warnings[0] or "answer format" in warnings[0]


def example_row_json(item):
    from sparkrl.training import example_row

    return example_row(Example.from_dict(item), PromptConfig())["example"]


def test_two_processes_train_on_identical_recycled_items(tiny_model, tmp_path):
    out = tmp_path / "ddp"
    spec = _spec(tiny_model, out)
    spec["config"]["grpo"]["per_device_train_batch_size"] = 8
    accelerate = [
        str(Path(sys.executable).parent / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29517",
    ]
    _run(spec, launcher=tuple(accelerate))
    rank0, rank1 = _rounds(out, 0), _rounds(out, 1)
    assert rank0 == rank1
    assert any(r["recycled"] for r in rank0)


# ---------------------------------------------------------------------------------------
# Extra reward functions (the untrained tiny model of conftest.py: a few seconds).

BONUS_MODULE = "def bonus(prompts, completions, **columns):\n    return [100.0] * len(completions)\n"


def _even_length_verifier(completion, answer, row):
    # Correctness the test can predict from the text; the answer makes rollouts judge candidates.
    return Verdict(float(len(completion) % 2 == 0), f"answer {len(completion)}", "custom")


def test_extra_rewards_shape_trl_rewards_but_recycling_sees_only_verdicts(tiny_model_and_tokenizer, tmp_path, monkeypatch):
    import copy

    from sparkrl import training
    from sparkrl.data import examples_to_jsonl
    from sparkrl.runs import build_trainer

    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "bonus_reward.py").write_text(BONUS_MODULE)
    examples_to_jsonl([Example(f"{a}+{a}", str(2 * a)) for a in range(8)], tmp_path / "train.jsonl")
    config = config_from_mapping({
        "model": {"path": "in-memory"},
        "data": {"train": str(tmp_path / "train.jsonl")},
        "output_dir": str(tmp_path / "run"),
        "rewards": {"extra": [{"function": "bonus_reward:bonus", "weight": 2.0, "tasks": ["policy"]}]},
        "spark": {"policy_steps": 2},
        "grpo": {"num_generations": 4, "per_device_train_batch_size": 8, "max_completion_length": 8,
                 "logging_steps": 1, "save_strategy": "no", "report_to": [], "use_cpu": True},
    })
    groups = []

    def spy(batch, *args, **kwargs):
        groups.extend(batch)
        return recycle(batch, *args, **kwargs)

    recycle = training.recycle
    monkeypatch.setattr(training, "recycle", spy)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, tokenizer = tiny_model_and_tokenizer
        trainer = build_trainer(config, model=copy.deepcopy(model), tokenizer=tokenizer)
        trainer.router.register("policy", _even_length_verifier)
        trainer.train()
    finally:
        torch.set_num_threads(threads)

    assert trainer.reward_weights.tolist() == [1.0, 2.0]  # the router, then rewards.extra
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [m for m in metrics if "reward" in m]
    policy, recycled = [m for m in steps if m["spark/share_policy"] == 1.0], [m for m in steps if m["spark/share_policy"] == 0.0]
    assert len(policy) == 2 and len(recycled) == 1
    for m in policy:  # TRL's reward is the shaped sum, and each function is logged on its own
        assert m["rewards/bonus/mean"] == 100.0 and 0.0 <= m["rewards/spark_reward/mean"] <= 1.0
        assert m["reward"] == pytest.approx(m["rewards/spark_reward/mean"] + 200.0)
    assert recycled[0]["rewards/bonus/mean"] is None  # not a policy row: left unscored
    assert recycled[0]["reward"] == pytest.approx(recycled[0]["rewards/spark_reward/mean"])
    # the recycling saw the verifier's 0/1 verdicts, never the +200
    rollouts = [r for g in groups for r in g.rollouts]
    assert len(groups) == 4 and {r.reward for r in rollouts} == {0.0, 1.0}
    assert all(r.reward == _even_length_verifier(r.text, "", {}).score for r in rollouts)
    built = [Example.from_dict(item) for item in trainer.round_state.pool] + [
        Example.from_dict(json.loads(item)) for r in _rounds(tmp_path / "run") if r["recycled"] for item in r["items"]
    ]
    judges = [e for e in built if e.task in ("pointwise", "pairwise")]
    assert judges and {e.answer for e in judges} <= {"Yes", "No", "A", "B"}
    # a round in which TRL skipped the router cannot recycle the previous round's verdicts
    from trl import GRPOTrainer

    assert trainer.router.last_rows
    monkeypatch.setattr(GRPOTrainer, "_generate_and_score_completions", lambda self, inputs: {})
    trainer.model.train()
    with pytest.raises(RuntimeError, match="scored 0 of the round's 8 rows"):
        trainer._generate_and_score_completions([trainer.train_dataset[i] for i in range(2) for _ in range(4)])
