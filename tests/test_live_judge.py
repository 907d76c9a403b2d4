"""Self-judged rewards in training (sparkrl.live_judge): the live tiny model judges its own
rollouts on CPU, the `sparkrl train` command logs the monitoring, a resumed run continues
exactly, unlabeled rollouts are never recycled, and TRL's vLLM colocate path carries the judge's
calls (with a stand-in engine, as in test_vllm_standin.py)."""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
import yaml

from sparkrl.config import PromptConfig, config_from_mapping
from sparkrl.rewards import ScoredRow, SelfJudgedScore
from sparkrl.rows import Example
from sparkrl.self_reward import JudgePrompt
from sparkrl.training import example_row, rollout_groups
from sparkrl.verification import Verdict, extract_final_answer

GROUP = 4


# Tiny models train fastest on one thread (the fixture is in conftest.py).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def judge_model(tmp_path_factory):
    """A briefly warm-started tiny model (about 4 s): it writes `\\boxed{}` answers and verdicts,
    so its verdict probabilities can be read; and the task's train problems."""
    import torch

    from sparkrl.tiny.model import build_tiny_model
    from sparkrl.tiny.task import TaskConfig, generate_examples
    from sparkrl.tiny.tokenizer import build_tokenizer
    from sparkrl.tiny.warmstart import WarmStartConfig, WarmStartData, build_pairs, warm_start

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("judge-model")
    task = TaskConfig(digits=1, carry_slip=0.5)
    tokenizer = build_tokenizer()
    model = build_tiny_model(tokenizer, seed=0, size="nano")
    pairs = build_pairs(task, WarmStartData(policy=200, pointwise=100, pairwise=100, reflection=0), seed=0)
    warm_start(model, tokenizer, pairs, WarmStartConfig(steps=80, batch_size=16), seed=0, progress=None)
    model.save_pretrained(folder / "model")
    tokenizer.save_pretrained(folder / "model")
    return SimpleNamespace(path=folder / "model", problems=generate_examples(task, "train", 32, seed=1))


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _parity(completion, answer, row):
    """A verifier the test can predict: mixed groups, so that the judge's ranking can be compared."""
    return Verdict(float(len(completion) % 2 == 0), extract_final_answer(completion), "custom")


def _mapping(model, train, out, **spark):
    return {
        "model": {"path": str(model)},
        "data": {"train": str(train)},
        "output_dir": str(out),
        "seed": 0,
        "prompt": {"suffix": ""},
        "rewards": {"verifiers": {"policy": "tests.test_live_judge:_parity"}},
        "spark": {"schedule": "alternate", "policy_steps": 3, "recycling": {"templates": "tiny"}, **spark},
        "grpo": {"num_generations": GROUP, "per_device_train_batch_size": 4 * GROUP, "max_completion_length": 20,
                 "learning_rate": 2e-3, "logging_steps": 1, "save_steps": 1, "report_to": [], "use_cpu": True},
    }


def _metrics(out):
    return [m for m in map(json.loads, (Path(out) / "metrics.jsonl").read_text().splitlines()) if "loss" in m]


def test_unlabeled_groups_are_never_recycled():
    rows = [example_row(Example("q", "4"), PromptConfig(suffix=""))] * 2
    rows += [example_row(Example("open q", "", task="open"), PromptConfig(suffix=""))] * 2
    scored = [ScoredRow("policy", "\\boxed{4}", Verdict(1.0, "4", "x")), ScoredRow("policy", "5", Verdict(0.0, None, "x")),
              ScoredRow("open", "\\boxed{7}", SelfJudgedScore(1.0, "7", "self-judged-pointwise")),
              ScoredRow("open", "\\boxed{8}", SelfJudgedScore(0.0, "8", "self-judged-pointwise"))]
    for recycle_recycled in (False, True):  # not even when recycled items' rollouts are recycled
        (group,) = rollout_groups(rows, scored, 2, recycle_recycled)
        assert group.question == "q"


def test_pointwise_probabilities_come_from_the_live_model_and_match_a_direct_computation(judge_model, tmp_path):
    from sparkrl.inference.backends import HFBackend, SamplingParams, chat_messages
    from sparkrl.inference.strategies import verdict_probability
    from sparkrl.runs import build_trainer
    from sparkrl.templates import pointwise_prompt
    from sparkrl.tiny.templates import TINY_TEMPLATES

    train = _jsonl(tmp_path / "train.jsonl", [{"question": e.question, "answer": e.answer} for e in judge_model.problems])
    config = config_from_mapping(_mapping(judge_model.path, train, tmp_path / "run",
                                          self_reward={"max_new_tokens": 24, "samples": 3}))
    trainer = build_trainer(config)
    prompts = [JudgePrompt(pointwise_prompt(e.question, shown, templates=TINY_TEMPLATES))
               for e in judge_model.problems[:6] for shown in (e.answer, "10")]
    judged = trainer.self_reward.judge(prompts)
    assert len(judged.probabilities) == len(prompts) and all(0.0 <= p <= 1.0 for p in judged.probabilities)
    assert judged.generated_tokens > 0
    # the same weights, asked directly through the evaluation backend, give the same probabilities
    backend = HFBackend(copy.deepcopy(trainer.model), trainer.processing_class)
    greedy = backend.generate([chat_messages(p.text) for p in prompts], SamplingParams(max_new_tokens=24, top_logprobs=20))
    direct = [verdict_probability(g[0]) for g in greedy]
    read = [(p, d) for p, d in zip(judged.probabilities, direct) if d is not None]
    assert len(read) >= len(prompts) // 2 and len({round(d, 6) for _, d in read}) > 1
    assert all(p == pytest.approx(d, abs=1e-5) for p, d in read)


def test_the_train_command_rewards_unlabeled_rows_by_self_judgement_and_logs_the_monitoring(judge_model, tmp_path):
    from sparkrl.cli import main

    rows = [{"question": e.question, **({"answer": e.answer} if i % 2 else {})} for i, e in enumerate(judge_model.problems)]
    train = _jsonl(tmp_path / "mixed.jsonl", rows)
    run = tmp_path / "run.yaml"
    run.write_text(yaml.safe_dump(_mapping(judge_model.path, train, tmp_path / "run",
                                           self_reward={"mode": "pointwise", "max_new_tokens": 16})))
    assert main(["train", "--config", str(run)]) == 0
    steps = _metrics(tmp_path / "run")
    assert len(steps) >= 3
    for m in steps:
        assert m["spark/self_reward_active"] == 1.0
        if m["spark/share_open"] + m["spark/share_policy"] > 0:  # a round of dataset prompts: the judge was asked
            assert m["spark/time/self_reward_s"] > 0 and m["spark/self_reward/judge_tokens_per_policy_token"] > 0
        assert sum(m[f"spark/time/{phase}_s"] for phase in ("generation", "scoring", "self_reward", "preparation",
                                                              "recycling", "optimizer")) <= m["spark/time/interval_s"]
        if m.get("spark/share_open"):  # the reward of unlabeled rows is the self-judged score
            assert 0.0 <= m["spark/open_reward"] <= 1.0
            assert m["spark/open_reward"] == pytest.approx(m["spark/self_reward/mean"], abs=1e-6)
    monitored = [m for m in steps if "spark/self_reward_agreement" in m]
    assert monitored and all(0.0 <= m["spark/self_reward_agreement"] <= 1.0 for m in monitored)
    assert any(-1.0 <= m.get("spark/self_reward_spearman", 2.0) <= 1.0 for m in monitored)
    assert any(m["spark/share_open"] > 0 for m in steps) and any(m["spark/share_policy"] > 0 for m in steps)
    # recycled items come from labelled groups only
    rounds = [json.loads(line) for line in (tmp_path / "run" / "spark_rounds" / "rank-0.jsonl").read_text().splitlines()]
    state = json.loads((tmp_path / "run" / f"checkpoint-{len(steps)}" / "sparkrl_state.json").read_text())
    built = [json.loads(item) for r in rounds for item in r["items"][: r["recycled"]]] + state["pool"]
    assert built and all(item["source"]["group_source"]["task"] == "policy" for item in built)
    assert {"active", "labelled_rounds", "history"} <= state["self_reward"].keys()


def test_a_resumed_run_with_unlabeled_prompts_continues_exactly(judge_model, tmp_path):
    from sparkrl.runs import run_training

    train = _jsonl(tmp_path / "train.jsonl", [{"question": e.question, "answer": e.answer} for e in judge_model.problems[:16]])
    unlabeled = _jsonl(tmp_path / "unlabeled.jsonl", [{"question": e.question, "answer": "hidden"}
                                                      for e in judge_model.problems[16:]])
    spark = {"schedule": "mix", "mix_share": 0.25, "policy_steps": 4, "unlabeled_share": 0.5,
             "self_reward": {"mode": "pairwise", "max_pairs": 2, "max_new_tokens": 12, "monitor_every": 2,
                             "min_agreement": 0.0}}

    def config(out):
        mapping = _mapping(judge_model.path, train, out, **spark)
        mapping["data"]["unlabeled"] = str(unlabeled)
        return config_from_mapping(mapping)

    whole = tmp_path / "whole"
    run_training(config(whole))
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(whole / "checkpoint-2", resumed / "checkpoint-2")
    run_training(config(resumed), resume=str(resumed / "checkpoint-2"))

    keys = ("loss", "grad_norm", "reward", "spark/open_reward", "spark/self_reward_active", "spark/share_open")
    before, after = _metrics(whole), _metrics(resumed)
    assert [m["step"] for m in after] == [3, 4] == [m["step"] for m in before[2:]]
    for a, b in zip(before[2:], after):
        assert {k: a.get(k) for k in keys} == pytest.approx({k: b.get(k) for k in keys}, rel=1e-6)
    assert all(m["spark/share_open"] == 0.5 for m in before if m["spark/share_policy"] > 0)  # half the dataset slots
    assert [m["spark/self_reward_active"] for m in before] == [1.0] * 4  # the gate opened in round 0
    final_whole = json.loads((whole / "checkpoint-4" / "sparkrl_state.json").read_text())
    final_resumed = json.loads((resumed / "checkpoint-4" / "sparkrl_state.json").read_text())
    assert final_whole["self_reward"] == final_resumed["self_reward"]  # the history before the checkpoint included
    assert final_whole["unlabeled_taken"] == final_resumed["unlabeled_taken"] == 4 * 2
    assert len(final_whole["self_reward"]["history"]) == 2  # every second round with labelled rollouts


# ---------------------------------------------------------------------------------------
# TRL's vLLM colocate path with a stand-in engine (vLLM is not installed here).

YES_LOGPROB, NO_LOGPROB = -0.2, -1.9


class JudgingEngine:
    """Answers rollouts with `\\boxed{7}` and pointwise judge prompts with `\\boxed{Yes}`, whose
    verdict token carries log-probabilities for `Y` and `N`; records every request."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.requests = []
        engine = self

        class Model:
            def load_weights(self, weights):
                list(weights)

        class LLM:
            def __init__(self, **kwargs):
                runner = SimpleNamespace(model=Model())
                self.llm_engine = SimpleNamespace(
                    model_executor=SimpleNamespace(driver_worker=SimpleNamespace(model_runner=runner)))

            def reset_prefix_cache(self):
                pass

            def generate(self, rows, sampling_params, use_tqdm):
                texts = [tokenizer.decode(row["prompt_token_ids"]) for row in rows]
                engine.requests.append((sampling_params, texts))
                return [engine.answer(row, text) for row, text in zip(rows, texts)]

        self.llm_class = LLM

    def answer(self, row, text):
        judging = "Proposed answer:" in text
        reply = "\\boxed{Yes}" if judging else "\\boxed{7}"
        ids = self.tokenizer(reply, add_special_tokens=False)["input_ids"] + [self.tokenizer.eos_token_id]
        step = lambda token: {token: SimpleNamespace(logprob=-0.01, rank=1)}  # noqa: E731
        logprobs = [step(token) for token in ids]
        if judging:  # the token after "\boxed{": the verdict
            at = len(self.tokenizer("\\boxed{", add_special_tokens=False)["input_ids"])
            y, n = self.tokenizer.convert_tokens_to_ids(["Y", "N"])
            logprobs[at] = {y: SimpleNamespace(logprob=YES_LOGPROB, rank=1), n: SimpleNamespace(logprob=NO_LOGPROB, rank=2)}
        return SimpleNamespace(prompt_token_ids=row["prompt_token_ids"],
                               outputs=[SimpleNamespace(token_ids=ids, logprobs=logprobs)])


def test_on_vllm_colocate_the_judge_asks_trls_engine_with_its_own_settings(tiny_model_dir, tmp_path, monkeypatch):
    import trl.generation.vllm_generation as vllm_generation
    from transformers import AutoTokenizer

    from sparkrl.runs import run_training

    engine = JudgingEngine(AutoTokenizer.from_pretrained(tiny_model_dir))
    monkeypatch.setattr(vllm_generation, "is_vllm_available", lambda *a, **k: True)
    monkeypatch.setattr(vllm_generation, "LLM", engine.llm_class, raising=False)
    monkeypatch.setattr(vllm_generation, "SamplingParams", lambda **kw: SimpleNamespace(**kw), raising=False)
    rows = [{"question": f"What is {a}+3?", **({"answer": str(a + 3)} if a % 2 else {})} for a in range(8)]
    mapping = _mapping(tiny_model_dir, _jsonl(tmp_path / "train.jsonl", rows), tmp_path / "run",
                       schedule="off", policy_steps=2, recycling={},
                       self_reward={"mode": "pointwise", "max_new_tokens": 9, "monitor_every": 100})
    mapping["rewards"] = {}
    mapping["grpo"].update(max_completion_length=16, save_strategy="no", use_vllm=True, vllm_mode="colocate",
                           vllm_gpu_memory_utilization=0.25)
    with mock.patch.dict(os.environ):  # TRL's colocate set-up writes RANK, WORLD_SIZE, ... into os.environ
        run_training(config_from_mapping(mapping))
    rollouts = [(params, texts) for params, texts in engine.requests if "Proposed answer:" not in texts[0]]
    judging = [(params, texts) for params, texts in engine.requests if "Proposed answer:" in texts[0]]
    assert len(rollouts) == 2 and judging  # each round: the rollouts, then one judging call
    assert all(p.max_tokens == 16 and p.temperature == 1.0 for p, _ in rollouts)  # TRL's settings, restored
    assert all(p.max_tokens == 9 and p.temperature == 0.0 and p.logprobs == 20 for p, _ in judging)
    assert all(all("Proposed answer:" in t for t in texts) for _, texts in judging)
    expected = math.exp(YES_LOGPROB) / (math.exp(YES_LOGPROB) + math.exp(NO_LOGPROB))
    steps = _metrics(tmp_path / "run")
    assert all(m["spark/open_reward"] == pytest.approx(expected, abs=1e-6) for m in steps if m.get("spark/share_open"))
    assert any(m.get("spark/share_open") for m in steps)
