"""Self-judged rewards on unlabeled prompts, measured on the embedded demo (issue #22, item 4).

From a `sparkrl demo` folder (its warm start DIR/models/warmstart, its training prompts
DIR/data/train.jsonl, its text format in DIR/demo-config.json), the training prompts are split
once (--split-seed) into a labelled part and an unlabeled part, written without its answers
(and without the provenance that names the operands), so training never sees them. Then, per
seed, from the same warm start and with the same policy steps:

    labelled   SPARK on the labelled part only
    pointwise  the same, plus unlabeled prompts rewarded by the model's own P(Yes) (pointwise)
    pairwise   the same, plus unlabeled prompts rewarded by win rates of its pairwise comparisons
    majority   the same, plus unlabeled prompts rewarded by agreeing with their group's majority

The runs with unlabeled prompts get twice the prompt slots per round, half of them unlabeled
(`spark.unlabeled_share: 0.5`), so that every run trains as many labelled prompts per round as
`labelled` does; they pay for the extra prompts in compute (their wall time is reported). Each
run is `sparkrl train` in its own process (`--jobs` at a time, one thread each); every final model
and the warm start are then measured on held-out test-split problems and judge items
(`sparkrl.demo.measure`, greedy decoding). Written to --out: report.md (the table),
agreement.png (the self-judged reward's agreement and Spearman correlation with the verifier on
labelled rollouts, per optimizer step) and summary.json.

    python bench/self_reward_run.py --demo runs/demo-seed0 --out runs/self-reward --seeds 0 1 2

Re-running with the same --out resumes: finished runs and evaluations are not redone.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import yaml

from sparkrl.demo.measure import METRICS, MeasureJob, measure
from sparkrl.demo.pipeline import POOL_CAPACITY, held_out_items
from sparkrl.demo.runs import RunSpec, read_metrics, train_all, write_config
from sparkrl.demo.workload import text_workload

VARIANTS = {"labelled": None, "pointwise": "pointwise", "pairwise": "pairwise", "majority": "majority"}
MONITORED = ("spark/self_reward_agreement", "spark/self_reward_spearman")


def split_prompts(train: Path, folder: Path, labelled_share: float, seed: int) -> tuple[Path, Path]:
    """labelled.jsonl (rows as they are) and unlabeled.jsonl (question, images, system only)."""
    rows = [json.loads(line) for line in train.read_text().splitlines() if line.strip()]
    random.Random(f"self-reward-split/{seed}").shuffle(rows)
    cut = round(labelled_share * len(rows))
    if not 0 < cut < len(rows):
        raise SystemExit(f"--labelled {labelled_share} leaves no labelled or no unlabeled prompt of {len(rows)}")
    hidden = [{key: row[key] for key in ("question", "images", "system") if key in row} for row in rows[cut:]]
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "labelled.jsonl", folder / "unlabeled.jsonl"
    for path, part in zip(paths, (rows[:cut], hidden)):
        path.write_text("".join(json.dumps(row) + "\n" for row in part))
    return paths


def run_configs(
    args: argparse.Namespace, workload: Any, files: tuple[Path, Path]
) -> tuple[list[RunSpec], dict[str, Path]]:
    """One `sparkrl train` configuration per variant and seed."""
    warm, (labelled, unlabeled) = args.demo / "models" / "warmstart", files
    base = {"policy_steps": args.policy_steps, "recycling": dict(workload.recycling), "pool_capacity": POOL_CAPACITY,
            "schedule": workload.schedule}
    specs, configs = [], {}
    for seed in args.seeds:
        for name, mode in VARIANTS.items():
            grpo = dict(workload.grpo_settings())
            spark = dict(base)
            if mode is not None:
                for key in ("generation_batch_size", "per_device_train_batch_size"):
                    grpo[key] = 2 * int(grpo[key])
                spark |= {"unlabeled_share": 0.5, "self_reward": {"mode": mode, "max_pairs": args.max_pairs,
                                                                  "samples": args.samples, "monitor_every": 1}}
            spec = RunSpec(f"{name}-seed{seed}", spark, args.out / "runs" / f"{name}-seed{seed}", curve_points=1)
            path = write_config(spec, warm, labelled, seed, workload.templates, grpo, workload.frozen)
            if mode is not None:
                config = yaml.safe_load(path.read_text())
                config["data"]["unlabeled"] = str(unlabeled)
                path.write_text(yaml.safe_dump(config, sort_keys=False))
            specs.append(spec)
            configs[spec.name] = path
    return specs, configs


def evaluate_all(args: argparse.Namespace, demo: dict[str, Any], workload: Any, specs: list[RunSpec]) -> dict[str, dict]:
    """Held-out measurements of the warm start and every final model, `--jobs` at a time."""
    items = held_out_items(workload, args.out / "data", args.eval_problems, args.judge_items, int(demo["seed"]))
    models = {"warmstart": args.demo / "models" / "warmstart"} | {spec.name: spec.final for spec in specs}
    tokens = int(workload.grpo_settings()["max_completion_length"])
    jobs = {name: MeasureJob(str(model), str(args.out / "eval" / name), items, workload.templates, tokens,
                             reflection=args.reflection) for name, model in models.items()}
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn")) as pool:
        futures = {name: pool.submit(measure, job) for name, job in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


def _mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(specs: list[RunSpec], measured: dict, seconds: dict) -> dict[str, Any]:
    """Per variant: the held-out metrics over seeds and what the logs say of the judge."""
    variants: dict[str, Any] = {}
    for name in VARIANTS:
        runs = [spec for spec in specs if spec.name.startswith(f"{name}-seed")]
        steps = {spec.name: [m for m in read_metrics(spec.folder) if "loss" in m] for spec in runs}
        entry: dict[str, Any] = {"seeds": [int(spec.name.rsplit("seed", 1)[1]) for spec in runs]}
        for metric in METRICS:
            values = [measured[spec.name][metric] for spec in runs if metric in measured[spec.name]]
            if values:
                entry[metric] = {"mean": _mean_sd(values)[0], "sd": _mean_sd(values)[1], "per_seed": values}
        for key in (*MONITORED, "spark/self_reward/judge_tokens_per_policy_token", "spark/time/self_reward_s"):
            # the last quarter of each run, then the mean over seeds
            per_run = [[m[key] for m in logged[len(logged) * 3 // 4 :] if key in m] for logged in steps.values()]
            values = [statistics.fmean(v) for v in per_run if v]
            if values:
                entry[key] = statistics.fmean(values)
        entry["train_seconds"] = statistics.fmean(seconds[spec.name] for spec in runs) if all(
            spec.name in seconds for spec in runs) else None
        entry["curves"] = {spec.name: [(m["step"], m.get(MONITORED[0]), m.get(MONITORED[1])) for m in logged]
                           for spec, logged in zip(runs, steps.values())}
        variants[name] = entry
    return {"warmstart": measured["warmstart"], "variants": variants}


def plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    colours = dict(zip(VARIANTS, ("grey", "tab:blue", "tab:orange", "tab:green")))
    for name, entry in summary["variants"].items():
        for run, points in entry["curves"].items():
            for axis, column in zip(axes, (1, 2)):
                shown = [(row[0], row[column]) for row in points if row[column] is not None]
                if shown:
                    axis.plot(*zip(*shown), color=colours[name], alpha=0.8, linewidth=1,
                              label=name if run.endswith(f"seed{entry['seeds'][0]}") else None)
    for axis, title in zip(axes, ("agreement with the verifier (score >= 0.5 vs 0/1)", "mean Spearman per group")):
        axis.set_xlabel("optimizer step")
        axis.set_title(title, fontsize=10)
        axis.legend()
    axes[0].set_ylim(0, 1)
    axes[1].set_ylim(-1, 1)
    figure.suptitle("self-judged reward on labelled rollouts (one line per seed)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def report(summary: dict[str, Any], command: str) -> str:
    def cell(entry: dict[str, Any], metric: str) -> str:
        value = entry.get(metric)
        return "-" if value is None else f"{100 * value['mean']:.1f} ± {100 * value['sd']:.1f}"

    def number(value: float | None, digits: int = 2) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    lines = [f"# Self-judged rewards on unlabeled prompts\n\nCommand: `{command}`\n",
             "Held-out metrics in % (mean ± sd over seeds); judge columns: last quarter of each run, mean over seeds.\n",
             "| run | policy accuracy | pointwise judge | pairwise judge | self-reflection | agreement | Spearman | "
             "judge tokens / policy token | self-reward s / round | train wall s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    warm = summary["warmstart"]
    lines.append("| warm start | " + " | ".join(
        "-" if metric not in warm else f"{100 * warm[metric]:.1f}" for metric in METRICS) + " | - | - | - | - | - |")
    judge_keys = (*MONITORED, "spark/self_reward/judge_tokens_per_policy_token", "spark/time/self_reward_s")
    for name, entry in summary["variants"].items():
        held_out = " | ".join(cell(entry, metric) for metric in METRICS)
        judge = " | ".join(number(entry.get(key)) for key in judge_keys)
        lines.append(f"| {name} | {held_out} | {judge} | {number(entry['train_seconds'], 0)} |")
    return "\n".join(lines) + "\n\n![agreement](agreement.png)\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, required=True, help="a `sparkrl demo` folder (text modality)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--policy-steps", type=int, default=None, help="default: the demo workload's")
    parser.add_argument("--labelled", type=float, default=0.5, help="share of the training prompts kept labelled")
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--max-pairs", type=int, default=8, help="pairwise: pairs compared per group")
    parser.add_argument("--samples", type=int, default=4, help="sampled verdicts where no probability can be read")
    parser.add_argument("--eval-problems", type=int, default=200)
    parser.add_argument("--judge-items", type=int, default=200)
    parser.add_argument("--reflection", action="store_true", help="also measure self-reflection (slow)")
    parser.add_argument("--jobs", type=int, default=2, help="processes at a time, one thread each")
    args = parser.parse_args(argv)
    demo = json.loads((args.demo / "demo-config.json").read_text())
    if demo.get("modality", "text") != "text":
        raise SystemExit("self-judged rewards are not supported for vision-language models; use a text demo")
    workload = text_workload(demo.get("text_format", "one-bit"), bool(demo.get("quick")))
    args.policy_steps = args.policy_steps or workload.policy_steps
    command = "python bench/self_reward_run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    files = split_prompts(args.demo / "data" / "train.jsonl", args.out / "data", args.labelled, args.split_seed)
    specs, configs = run_configs(args, workload, files)
    seconds = train_all(specs, configs, args.jobs, print)
    measured = evaluate_all(args, demo, workload, specs)
    summary = {"command": command, **summarise(specs, measured, seconds)}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    plot(summary, args.out / "agreement.png")
    text = report(summary, command)
    (args.out / "report.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
