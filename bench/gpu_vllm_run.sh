#!/bin/bash
# NOT RUN BY THE SPARKRL DEVELOPERS. vLLM and real model weights cannot be brought to a GPU in
# their environment, so this script has never run end to end. What was checked without a GPU:
# `bash -n`, the configurations it writes (`sparkrl train --dry-run`), its report on metrics files
# of the same format, and TRL's colocate path with a stand-in engine (tests/test_vllm_standin.py).
# Read its numbers critically, and please report what it printed.
#
# SPARK on one GPU with TRL's colocated vLLM generation (grpo.use_vllm: true, grpo.vllm_mode:
# colocate): a short run of the model in full (RUNS=full) and/or with LoRA adapters (RUNS=lora),
# then `sparkrl eval reasoning --backend vllm` of each run's final model on held-out questions,
# then what they cost: generation tokens per second and seconds per round, read from the run's
# metrics.jsonl, and the evaluation's tokens per second.
#
# Needs: one CUDA GPU; sparkrl with vLLM (`pip install -e .[vllm]`, a vLLM release TRL 1.16
# supports: 0.22 to 0.31); a local instruct model folder (nothing is downloaded). Full training
# keeps float32 weights, gradients and Adam state (about 16 bytes per parameter) beside vLLM's
# share of the GPU (VLLM_MEMORY), so on an 80 GB GPU give RUNS=full a model of at most about
# 3B parameters (e.g. Qwen2.5-1.5B-Instruct); RUNS=lora trains adapters on bfloat16 weights.
# Data: GSM8K-format JSONL (question, answer ending `#### N`), by default the GSM8K test split
# in /work/shared/data; its first TRAIN_ROWS rows train, the rows after them are evaluated.
# A round is 8 prompts x 8 samples, trained in one optimizer step (8 micro-batches of 8).
#
#   bash bench/gpu_vllm_run.sh MODEL_DIR WORK_DIR
#   environment (defaults): RUNS="full lora" DATA=/work/shared/data/gsm8k_test.jsonl
#   TRAIN_ROWS=256 POLICY_STEPS=4 EVAL_LIMIT=200 MAX_NEW_TOKENS=512 VLLM_MEMORY=0.3
#   PYTHON=python; REPORT_ONLY=1 prints the report of an earlier WORK_DIR again.
set -uo pipefail
model=${1:?usage: bash bench/gpu_vllm_run.sh MODEL_DIR WORK_DIR}
work=${2:?usage: bash bench/gpu_vllm_run.sh MODEL_DIR WORK_DIR}
python=${PYTHON:-python}
runs=${RUNS:-full lora}
data=${DATA:-/work/shared/data/gsm8k_test.jsonl}
max_new=${MAX_NEW_TOKENS:-512}
notice="NOTE: bench/gpu_vllm_run.sh has not been run by the sparkrl developers (no vLLM or real weights on their GPU machines); check these numbers before relying on them."
echo "$notice"
mkdir -p "$work"

# $runs is split into words on purpose (RUNS="full lora").
# shellcheck disable=SC2086
if [ -z "${REPORT_ONLY:-}" ]; then
    $python - "$model" "$work" "$data" "${TRAIN_ROWS:-256}" "${POLICY_STEPS:-4}" "$max_new" \
        "${VLLM_MEMORY:-0.3}" $runs <<'PY' || exit 1
import sys, yaml
model, work, data, train_rows, policy_steps, max_new, memory, *runs = sys.argv[1:]
lines = open(data).read().splitlines()
train_rows = int(train_rows)
if len(lines) <= train_rows:
    sys.exit(f"{data}: {len(lines)} rows; need more than TRAIN_ROWS={train_rows} (the rest are evaluated)")
open(f"{work}/train.jsonl", "w").write("\n".join(lines[:train_rows]) + "\n")
open(f"{work}/eval.jsonl", "w").write("\n".join(lines[train_rows:]) + "\n")
for name in runs:
    if name not in ("full", "lora"):
        sys.exit(f"RUNS: unknown run {name!r}; use full and/or lora")
    lora = name == "lora"
    config = {
        # float32 weights for full training: Adam's updates at lr 1e-6 vanish in bfloat16 weights
        "model": {"path": model, "dtype": "bfloat16" if lora else "float32",
                  **({"lora": {"r": 16, "alpha": 32}} if lora else {})},
        "data": {"train": f"{work}/train.jsonl", "loader": {"answer_format": "gsm8k"}},
        "output_dir": f"{work}/{name}",
        "seed": 0,
        "spark": {"schedule": "alternate", "policy_steps": int(policy_steps)},
        "grpo": {
            "num_generations": 8,
            "per_device_train_batch_size": 8,
            "gradient_accumulation_steps": 8,  # 64 rollouts per round, one optimizer step
            "learning_rate": 1.0e-5 if lora else 1.0e-6,
            "lr_scheduler_type": "constant",
            "beta": 0.001,
            "temperature": 1.0,
            "max_completion_length": int(max_new),
            "bf16": True,
            "gradient_checkpointing": True,
            "use_vllm": True,
            "vllm_mode": "colocate",
            "vllm_gpu_memory_utilization": float(memory),
            "vllm_max_model_length": 4096,  # judge and reflection prompts quote answers: longer than questions
            "logging_steps": 1,
            "save_strategy": "no",
            "report_to": [],
        },
    }
    yaml.safe_dump(config, open(f"{work}/{name}.yaml", "w"), sort_keys=False)
PY
    for name in $runs; do
        rm -rf "${work:?}/$name" "${work:?}/$name-eval"  # metrics.jsonl appends: start afresh
        $python -m sparkrl train --config "$work/$name.yaml" > "$work/$name.log" 2>&1
        echo "$name: sparkrl train: exit $? (log: $work/$name.log)"
        mkdir -p "$work/$name-eval"
        start=$(date +%s.%N)
        $python -m sparkrl eval reasoning --backend vllm --model "$work/$name/final" \
            --data "gsm8k:$work/eval.jsonl" --out "$work/$name-eval" --limit "${EVAL_LIMIT:-200}" \
            --max-new-tokens "$max_new" --batch-size 128 --dtype bfloat16 --max-model-len 4096 \
            --gpu-memory-utilization 0.85 --no-progress > "$work/$name-eval.log" 2>&1
        status=$?
        echo "$name: sparkrl eval reasoning --backend vllm: exit $status (log: $work/$name-eval.log)"
        [ "$status" -eq 0 ] && $python -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" \
            "$start" "$(date +%s.%N)" > "$work/$name-eval/wall_s"
    done
fi

# shellcheck disable=SC2086
$python - "$model" "$work" $runs <<'PY'
import json, statistics, sys
from pathlib import Path
import yaml
model, work, *runs = sys.argv[1:]
work = Path(work)

def round_rows(path):
    """One row per round: the run logs every optimizer step and a round is one step."""
    rows = [json.loads(line) for line in open(path)]
    return [r for r in rows if "loss" in r and "completions/mean_length" in r]

for name in runs:
    metrics = work / name / "metrics.jsonl"
    if not metrics.exists():
        print(f"{name}: no {metrics}; see {work}/{name}.log")
        continue
    grpo = yaml.safe_load(open(work / f"{name}.yaml"))["grpo"]
    rollouts = grpo["per_device_train_batch_size"] * grpo["gradient_accumulation_steps"]  # one GPU
    rows = round_rows(metrics)
    sparkrl_times = all("spark/time/generation_s" in r for r in rows)
    how = ("spark/time/generation_s (TRL's generation call, its weight push to vLLM included) and "
           "spark/time/interval_s" if sparkrl_times else
           "TRL's step_time (generation plus the optimizer step: tokens/s is a lower bound)")
    print(f"\n{name}: {len(rows)} rounds of {rollouts} rollouts; times from {how}")
    print("  round  kind      mean tokens  generated  generation s  tokens/s  round s")
    speeds, seconds = [], []
    for index, r in enumerate(rows):
        tokens = r["completions/mean_length"] * rollouts
        generation = r["spark/time/generation_s"] if sparkrl_times else r["step_time"]
        spent = r["spark/time/interval_s"] if sparkrl_times else r["step_time"]
        speed = tokens / generation if generation > 0 else float("nan")
        kind = "policy" if r.get("spark/share_policy", 1.0) > 0 else "recycled"
        print(f"  {index:5d}  {kind:8s}  {r['completions/mean_length']:11.1f}  {tokens:9.0f}  "
              f"{generation:12.2f}  {speed:8.1f}  {spent:7.2f}")
        if index:  # the first round also warms vLLM up
            speeds.append(speed)
            seconds.append(spent)
    if speeds:
        print(f"  median after the first round: {statistics.median(speeds):.1f} generated tokens/s, "
              f"{statistics.median(seconds):.2f} s per round")
    runtime = next((r["train_runtime"] for r in map(json.loads, open(metrics)) if "train_runtime" in r), None)
    if runtime is not None:
        print(f"  training: {runtime:.1f} s in all (TRL's train_runtime)")

    evaluation = work / f"{name}-eval"
    if not (evaluation / "summary.json").exists():
        print(f"  evaluation: no {evaluation}/summary.json; see {work}/{name}-eval.log")
        continue
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model, local_files_only=True)
    summary = json.loads((evaluation / "summary.json").read_text())
    texts = [c["text"] for line in open(evaluation / "single.jsonl")
             for p in json.loads(line)["probes"] for c in p["candidates"]]
    tokens = sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])
    timing = evaluation / "wall_s"
    speed = ""
    if timing.exists():
        wall = float(timing.read_text())
        speed = f" in {wall:.1f} s, {tokens / wall:.1f} tokens/s (vLLM's start-up included)"
    print(f"  evaluation (vLLM, greedy): accuracy {summary['accuracy']:.3f} on {summary['n']} questions, "
          f"{tokens} tokens generated{speed}")
PY
echo "$notice"
