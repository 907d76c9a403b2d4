"""SPARK against plain GRPO on a real pretrained chat model with LoRA, measured side by side.

What it runs (all on the CPU, one job after another):
1. the task: a synthetic one, said plainly: "What is A + B?" for A, B in 1..12, 100 pairs to
   train on and 44 others held out (configs/data/sums-*.jsonl, as in the README's example). SmolLM2-135M-Instruct (the tests' real model, 4-bit
   weights de-quantized) solves about 8% of single-digit sums when sampled, and almost no
   GSM8K problem, so GSM8K would give no learning signal in tens of steps;
2. plain GRPO (`spark.schedule: off`) and SPARK (`alternate`) from the same model, same LoRA,
   same settings and the same number of policy steps, each as its own `sparkrl train` process;
3. `sparkrl eval` of the base model and both final models: held-out accuracy (single answer,
   self-reflection) and pairwise judging of held-out real GSM8K solution pairs (both orders);
4. with `--compare-full`, a few rounds of LoRA and of full fine-tuning for peak memory and
   time per round.

    python bench/real_model_run.py --out runs/real-model [--policy-steps 24] [--compare-full] [--equal-rounds]

With `--equal-rounds`, plain GRPO is also trained for as many policy rounds as SPARK's policy and
recycled rounds together (equal optimizer steps and generation rounds), as a control for SPARK's
extra updates.

Writes `report.md`, `summary.json` and `curves.png` in --out, and prints the report.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / ".cache" / "models" / "smollm2-135m-instruct"
SHARED = Path(os.environ.get("SPARKRL_SHARED_DATA", ROOT.parent / "shared" / "data"))
# The task of configs/smollm2-135m-lora.yaml: "What is A + B?" for A, B in 1..12.
TRAIN = ROOT / "configs" / "data" / "sums-train.jsonl"
HELD_OUT = ROOT / "configs" / "data" / "sums-held-out.jsonl"
SYSTEM = "You are a concise math tutor."
SUFFIX = "Reply in the form: The answer is N."
PHASES = ("generation", "scoring", "preparation", "recycling", "optimizer")
# Runs this process as `sparkrl train` and prints its peak resident memory at the end.
MEASURED = (
    "import resource, sys\nfrom sparkrl.cli import main\ncode = main(sys.argv[1:])\n"
    "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\nsys.exit(code)\n"
)


def run_config(args: argparse.Namespace, train: Path, out: Path, schedule: str, lora: bool, policy_steps: int) -> dict:
    model = {"path": str(args.model), "dtype": "float32"}
    if lora:
        model["lora"] = {"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"}
    return {
        "model": model,
        "data": {"train": str(train)},
        "output_dir": str(out),
        "seed": args.seed,
        "prompt": {"system": SYSTEM, "suffix": SUFFIX},
        "spark": {"schedule": schedule, "policy_steps": policy_steps},
        "grpo": {
            "num_generations": args.generations,
            "per_device_train_batch_size": args.prompts * args.generations,
            "max_completion_length": args.max_tokens,
            "temperature": 0.7,
            "learning_rate": args.lr if lora else args.lr / 10,
            "logging_steps": 1,
            "save_strategy": "no",
            "gradient_checkpointing": False,
            "report_to": [],
            "use_cpu": True,
        },
    }


def train(config: dict, folder: Path) -> dict:
    """One `sparkrl train` process; its wall time, peak memory and per-round log."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder.with_suffix(".yaml")
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", MEASURED, "train", "--config", str(path)],
                            capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - started
    (folder / "train.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise SystemExit(f"training in {folder} failed ({result.returncode}); see {folder / 'train.log'}")
    peak = next(int(line.split()[1]) for line in result.stdout.splitlines() if line.startswith("PEAK_RSS_KB"))
    metrics = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return {"wall_s": wall, "peak_rss_gib": peak / 2**20, "steps": [m for m in metrics if "loss" in m]}


def evaluate(model: Path, held_out: Path, out: Path, args: argparse.Namespace) -> dict:
    """Held-out accuracy (single, reflection) and pairwise judging of GSM8K solution pairs."""
    prefix = [sys.executable, "-m", "sparkrl", "eval"]  # the kind comes first: `sparkrl eval KIND OPTIONS`
    common = ["--model", str(model), "--no-progress", "--seed", str(args.seed)]
    reasoning = [*prefix, "reasoning", *common, "--data", str(held_out), "--out", str(out / "reasoning"),
                 "--strategy", "single", "--strategy", "reflection", "--suffix", SUFFIX,
                 "--max-new-tokens", str(args.max_tokens), "--judge-max-new-tokens", "16"]
    pairwise = [*prefix, "pairwise", *common, "--data", f"gsm8k-solutions:{SHARED / 'gsm8k_model_solutions.jsonl'}",
                "--out", str(out / "pairwise"), "--limit", str(args.judge_pairs), "--judge-max-new-tokens", "32"]
    for command in (reasoning, pairwise):
        result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        if result.returncode != 0:
            raise SystemExit(f"evaluation failed: {' '.join(command)}\n{result.stderr[-2000:]}")
    summary = {kind: json.loads((out / kind / "summary.json").read_text()) for kind in ("reasoning", "pairwise")}
    strategies = summary["reasoning"]["strategies"]
    return {
        "single": strategies["single"]["accuracy"],
        "reflection": strategies["reflection"]["accuracy"],
        "reflection_detail": strategies["reflection"],
        "pairwise": next(iter(summary["pairwise"]["strategies"].values()))["accuracy"],
    }


def round_times(steps: list[dict]) -> dict[str, float]:
    """Median seconds per round and phase (rounds after the first: it pays for warm-up)."""
    later = steps[1:] or steps
    out = {phase: statistics.median(s.get(f"spark/time/{phase}_s", 0.0) for s in later) for phase in PHASES}
    out["round"] = statistics.median(s.get("spark/time/interval_s", 0.0) for s in later)
    return out


def plot(runs: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    for name, run in runs.items():
        points = [(s["step"], s["spark/policy_reward"]) for s in run["steps"] if "spark/policy_reward" in s]
        if points:
            steps, rewards = zip(*points, strict=True)
            axis.plot(steps, rewards, marker="o", markersize=3, label=name)
    axis.set_xlabel("optimizer step")
    axis.set_ylabel("policy reward (share of correct rollouts)")
    axis.set_title("SmolLM2-135M-Instruct + LoRA, A + B, 2 CPU cores")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def report(summary: dict) -> str:
    lines = ["# SPARK vs plain GRPO on a real model (LoRA)", "", f"Command: `{summary['command']}`", "",
             "| model | held-out single | self-reflection | pairwise judge (GSM8K pairs, both orders) |",
             "|---|---|---|---|"]
    for name, result in summary["eval"].items():
        lines.append(f"| {name} | {100 * result['single']:.1f}% | {100 * result['reflection']:.1f}% | {100 * result['pairwise']:.1f}% |")
    lines += ["", "| run | policy rounds | optimizer steps | wall | peak memory | median s per round: " + ", ".join(PHASES) + " |",
              "|---|---|---|---|---|---|"]
    for name, run in summary["runs"].items():
        times = run["round_times"]
        lines.append(f"| {name} | {run['policy_rounds']} | {len(run['steps'])} | {run['wall_s']:.0f} s | "
                     f"{run['peak_rss_gib']:.2f} GiB | {times['round']:.1f} s: "
                     + ", ".join(f"{times[p]:.1f}" for p in PHASES) + " |")
    return "\n".join(lines) + "\n"


def compare_full(args: argparse.Namespace, train_file: Path, out: Path) -> dict:
    """A few policy rounds of plain GRPO with LoRA and with full fine-tuning."""
    results = {}
    for name, lora in (("lora", True), ("full", False)):
        folder = out / f"memory-{name}"
        shutil.rmtree(folder, ignore_errors=True)
        run = train(run_config(args, train_file, folder, "off", lora, args.memory_rounds), folder)
        results[name] = {"peak_rss_gib": run["peak_rss_gib"], "wall_s": run["wall_s"], **round_times(run["steps"])}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--policy-steps", type=int, default=24)
    parser.add_argument("--prompts", type=int, default=4, help="prompts per round")
    parser.add_argument("--generations", type=int, default=4, help="samples per prompt")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-4, help="LoRA learning rate (full fine-tuning: a tenth)")
    parser.add_argument("--judge-pairs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compare-full", action="store_true", help="also measure LoRA against full fine-tuning")
    parser.add_argument("--memory-rounds", type=int, default=3)
    parser.add_argument("--equal-rounds", action="store_true",
                        help="also train plain GRPO for as many rounds as SPARK's policy and recycled rounds together")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    train_file, held_out = TRAIN, HELD_OUT
    summary = {"command": "python bench/real_model_run.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               "runs": {}, "eval": {}}
    print("[real model] evaluating the base model", flush=True)
    summary["eval"]["base"] = evaluate(args.model, held_out, args.out / "eval-base", args)
    plan = [("grpo", "off", args.policy_steps), ("spark", "alternate", args.policy_steps)]
    if args.equal_rounds:
        plan.append(("grpo-equal-rounds", "off", None))  # SPARK's round count, known once it has run
    for name, schedule, policy_steps in plan:
        policy_steps = policy_steps or len(summary["runs"]["spark"]["steps"])
        print(f"[real model] training {name} ({policy_steps} policy rounds)", flush=True)
        run = train(run_config(args, train_file, args.out / name, schedule, True, policy_steps), args.out / name)
        run["round_times"] = round_times(run["steps"])
        run["policy_rounds"] = policy_steps
        summary["runs"][name] = run
        print(f"[real model] evaluating {name}", flush=True)
        summary["eval"][name] = evaluate(args.out / name / "final", held_out, args.out / f"eval-{name}", args)
    if args.compare_full:
        print("[real model] LoRA against full fine-tuning", flush=True)
        summary["memory"] = compare_full(args, train_file, args.out)
    plot(summary["runs"], args.out / "curves.png")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    text = report(summary)
    if "memory" in summary:
        text += "\n| training | peak memory | median s per round |\n|---|---|---|\n" + "".join(
            f"| {name} | {m['peak_rss_gib']:.2f} GiB | {m['round']:.1f} s |\n" for name, m in summary["memory"].items())
    (args.out / "report.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
