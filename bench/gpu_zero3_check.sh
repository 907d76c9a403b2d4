#!/bin/bash
# GPU check of sparkrl train: TRL's precision default on one GPU, then DeepSpeed ZeRO-3 through
# accelerate (configs/accelerate/zero3.yaml, one process), then that ZeRO-3 run resumed from its
# checkpoint-8 in a fresh folder, compared step by step with the uninterrupted run.
# Needs a GPU, `pip install -e .[deepspeed]`, and a demo folder (`sparkrl demo --out DEMO`):
# its warm start, training data and SPARK configuration are reused with 8 policy steps.
#
#   bash bench/gpu_zero3_check.sh DEMO WORK     (docs/training.md has what it printed;
#   PYTHON=python3 if the interpreter with sparkrl is not `python`)
set -uo pipefail
demo=$1; work=$2; python=${PYTHON:-python}
mkdir -p "$work"
$python - "$demo" "$work" <<'PY'
import sys, yaml
demo, work = sys.argv[1:]
config = yaml.safe_load(open(f"{demo}/runs/spark/config.yaml"))
config["spark"]["policy_steps"] = 8
config["grpo"].pop("use_cpu", None)
config["grpo"]["save_steps"] = 4
for name in ("gpu", "zero3", "resumed"):
    config["output_dir"] = f"{work}/{name}"
    yaml.safe_dump(config, open(f"{work}/{name}.yaml", "w"), sort_keys=False)
PY
launch="$python -m accelerate.commands.launch --config_file configs/accelerate/zero3.yaml --num_processes 1 -m sparkrl train"
$python -m sparkrl train --config "$work/gpu.yaml" > "$work/gpu.log" 2>&1; echo "one GPU: exit $?"
$launch --config "$work/zero3.yaml" > "$work/zero3.log" 2>&1; echo "ZeRO-3: exit $?"
# the resumed run's folder as it stood when checkpoint-8 was written
mkdir -p "$work/resumed" && cp -r "$work/zero3/checkpoint-4" "$work/zero3/checkpoint-8" "$work/resumed/"
$python -c "import json, sys; rows = [json.loads(l) for l in open(sys.argv[1])]; open(sys.argv[2], 'w').write(''.join(json.dumps(r) + '\n' for r in rows if r['step'] <= 8))" \
    "$work/zero3/metrics.jsonl" "$work/resumed/metrics.jsonl"
$launch --config "$work/resumed.yaml" --resume > "$work/resumed.log" 2>&1; echo "ZeRO-3 resumed from checkpoint-8: exit $?"
$python - "$work" <<'PY'
import json, sys, torch
from transformers import AutoModelForCausalLM
work = sys.argv[1]
args = torch.load(f"{work}/gpu/checkpoint-4/training_args.bin", weights_only=False)
print(f"one GPU: bf16={args.bf16} fp16={args.fp16} use_cpu={args.use_cpu}")
for name in ("gpu", "zero3"):
    model = AutoModelForCausalLM.from_pretrained(f"{work}/{name}/final")
    rows = [json.loads(l) for l in open(f"{work}/{name}/metrics.jsonl") if '"loss"' in l]
    print(f"{name}: {len(rows)} optimizer steps, {sum(r['spark/share_policy'] < 1 for r in rows)} recycled; "
          f"final loads, {sum(p.numel() for p in model.parameters())} parameters, {model.dtype}")
keys = ("loss", "grad_norm", "reward", "spark/share_policy")
steps = lambda name: {r["step"]: r for r in map(json.loads, open(f"{work}/{name}/metrics.jsonl")) if "loss" in r}
whole, resumed = steps("zero3"), steps("resumed")
for step in sorted(s for s in whole if s > 8):
    same = step in resumed and all(round(whole[step][k], 5) == round(resumed[step][k], 5) for k in keys)
    print(f"step {step}: uninterrupted {[round(whole[step][k], 5) for k in keys]}, resumed "
          f"{[round(resumed[step][k], 5) for k in keys] if step in resumed else None}: {'same' if same else 'DIFFERENT'}")
PY
