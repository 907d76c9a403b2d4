#!/bin/bash
# GPU check of sparkrl train: TRL's precision default on one GPU, then DeepSpeed ZeRO-3 through
# accelerate (configs/accelerate/zero3.yaml, one process), then that ZeRO-3 run resumed from its
# checkpoint-8 in a fresh folder, compared step by step with the uninterrupted run.
# Needs a GPU, `pip install -e .[deepspeed]`, and a demo folder (`sparkrl demo --out DEMO`):
# its warm start, training data and SPARK configuration are reused with 8 policy steps. Run it
# from the repository root, where the demo ran (its configuration names paths as it was given).
#
#   bash bench/gpu_zero3_check.sh DEMO WORK     (docs/training.md has what it printed;
#   PYTHON=python3 if the interpreter with sparkrl is not `python`)
set -uo pipefail
demo=${1:?usage: bash bench/gpu_zero3_check.sh DEMO WORK}
work=${2:?usage: bash bench/gpu_zero3_check.sh DEMO WORK}
python=${PYTHON:-python}
rm -rf "$work/gpu" "$work/zero3" "$work/resumed"  # a run folder left over would be resumed
mkdir -p "$work"
$python - "$demo" "$work" <<'PY' || exit 1
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
$python - "$work" "$demo" <<'PY'
import json, math, sys
from pathlib import Path
import torch
import yaml
from transformers import AutoModelForCausalLM
work, demo = sys.argv[1:]
args = torch.load(f"{work}/gpu/checkpoint-4/training_args.bin", weights_only=False)
print(f"one GPU: bf16={args.bf16} fp16={args.fp16} use_cpu={args.use_cpu}")
warm = AutoModelForCausalLM.from_pretrained(yaml.safe_load(open(f"{demo}/runs/spark/config.yaml"))["model"]["path"])
for name in ("gpu", "zero3"):
    model = AutoModelForCausalLM.from_pretrained(f"{work}/{name}/final")
    rows = [json.loads(line) for line in open(f"{work}/{name}/metrics.jsonl")]
    steps = [r for r in rows if "loss" in r]
    runtime = next((r["train_runtime"] for r in rows if "train_runtime" in r), float("nan"))
    change = max((a.float() - b.float()).abs().max().item() for a, b in zip(model.parameters(), warm.parameters()))
    print(f"{name}: {len(steps)} optimizer steps, {sum(r['spark/share_policy'] < 1 for r in steps)} recycled, "
          f"{runtime:.1f} s of training; final loads: {sum(p.numel() for p in model.parameters())} parameters, "
          f"{model.dtype}, largest change from the warm start {change:.4f}")
print("zero3 checkpoint-4 holds:", " ".join(sorted(p.name for p in Path(f"{work}/zero3/checkpoint-4").iterdir())))
keys = ("loss", "grad_norm", "reward", "spark/share_policy")
def steps(name):
    return {r["step"]: r for r in map(json.loads, open(f"{work}/{name}/metrics.jsonl")) if "loss" in r and r["step"] > 8}
whole, resumed = steps("zero3"), steps("resumed")
same = bool(whole) and whole.keys() == resumed.keys()
for step in sorted(whole.keys() | resumed.keys()):
    a, b = whole.get(step), resumed.get(step)
    match = a is not None and b is not None and all(math.isclose(a[k], b[k], rel_tol=1e-6, abs_tol=1e-9) for k in keys)
    same = same and match
    show = lambda r: [round(r[k], 5) for k in keys] if r else None
    print(f"step {step}: uninterrupted {show(a)}, resumed {show(b)}: {'same' if match else 'DIFFERENT'}")
print(f"resume check: {'PASS' if same else 'FAIL'} ({len(whole)} steps after checkpoint-8)")
PY
