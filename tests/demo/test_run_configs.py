"""The YAML configurations the demo writes for its RL runs are valid `sparkrl train` runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkrl.config import load_config
from sparkrl.demo.runs import run_specs, write_config
from sparkrl.demo.workload import demo_grpo_settings
from sparkrl.runs import validate_run
from sparkrl.schedule import optimizer_steps_per_round


@pytest.mark.parametrize("schedule", ["alternate", "mix"])
@pytest.mark.parametrize("steps_per_round", [1, 4])
def test_demo_run_configs_checkpoint_between_rounds(tmp_path: Path, schedule: str, steps_per_round: int) -> None:
    model, train = tmp_path / "model", tmp_path / "train.jsonl"
    model.mkdir()
    train.write_text('{"question": "1+1", "answer": "2"}\n')
    # Several optimizer steps per round (each on a share of its completions), as a user may set.
    grpo = {**demo_grpo_settings(quick=False, max_completion_length=48), "per_device_train_batch_size": 128 // steps_per_round}
    specs = run_specs(tmp_path / "runs", policy_steps=40, curve_points=4, ablations=True, recycling={},
                      pool_capacity=64, schedule=schedule)
    expected = {"grpo": "off", "spark": schedule, "spark-pointwise": schedule, "spark-pairwise": schedule,
                "spark-reflection": schedule}
    if schedule == "alternate":  # plain GRPO also gets SPARK's round budget as policy steps
        expected["grpo-rounds"] = "off"
    assert {spec.name: spec.spark["schedule"] for spec in specs} == expected
    assert {spec.name: spec.spark["policy_steps"] for spec in specs}.get("grpo-rounds", 80) == 80
    for spec in specs:
        args = validate_run(load_config(write_config(spec, model, train, 0, "tiny", grpo)))
        assert optimizer_steps_per_round(args) == steps_per_round
        assert args.generation_batch_size == 128  # 16 prompts x 8 completions, however many steps train on them
        rounds = int(spec.spark["policy_steps"]) * (2 if spec.spark["schedule"] == "alternate" else 1)
        assert args.max_steps == rounds * steps_per_round
        # Four checkpoints over the run's rounds, each at the end of a round.
        assert args.save_steps == rounds // 4 * steps_per_round
