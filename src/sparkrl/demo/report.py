"""The demo's report: DIR/report.md with its tables, and the plots it shows (PNG).

- curves.png: held-out policy accuracy and judge accuracy (pairwise, pointwise) against the
  policy step, one line per run, GRPO and SPARK side by side;
- final.png: the four measurements of every model, as grouped bars;
- training.png: what each run saw during training (policy reward, and for SPARK the judge
  accuracy on the recycled items it trained on), from the runs' metrics files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sparkrl.demo.claims import check_claims, claims_table, equal_rounds
from sparkrl.demo.measure import METRICS
from sparkrl.demo.runs import read_metrics

LABELS = {
    "policy_accuracy": "policy (greedy)",
    "judge_pointwise_accuracy": "pointwise judge",
    "judge_pairwise_accuracy": "pairwise judge",
    "self_reflection_accuracy": "self-reflection",
}
COLOURS = {"warmstart": "#999999", "grpo": "#1f77b4", "spark": "#d62728"}


def model_names(summary: Mapping[str, Any]) -> list[str]:
    """The measured models, in report order: warm start, GRPO, SPARK, ablations."""
    return [name for name, value in summary.items() if isinstance(value, Mapping) and "policy_accuracy" in value]


def results_table(summary: Mapping[str, Any]) -> str:
    header = "| model | " + " | ".join(LABELS[m] for m in METRICS) + " |"
    lines = [header, "|---" * (len(METRICS) + 1) + "|"]
    for name in model_names(summary):
        row = summary[name]
        lines.append(f"| {name} | " + " | ".join(_pct(row.get(m)) for m in METRICS) + " |")
    return "\n".join(lines)


def curves_table(curves: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    metrics = ("policy_accuracy", "judge_pairwise_accuracy", "judge_pointwise_accuracy")
    lines = ["| run | policy step | " + " | ".join(LABELS[m] for m in metrics) + " |", "|---" * (len(metrics) + 2) + "|"]
    for name, points in curves.items():
        for point in points:
            lines.append(f"| {name} | {point['policy_step']} | " + " | ".join(_pct(point.get(m)) for m in metrics) + " |")
    return "\n".join(lines)


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):.1f}%"


def plot_curves(curves: Mapping[str, Sequence[Mapping[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = ("policy_accuracy", "judge_pairwise_accuracy", "judge_pointwise_accuracy")
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), sharey=True)
    for ax, metric in zip(axes, metrics):
        for name, points in curves.items():
            ax.plot([p["policy_step"] for p in points], [100 * p[metric] for p in points], marker="o",
                    label=name, color=COLOURS.get(name), linewidth=2 if name in COLOURS else 1)
        ax.axhline(50, color="#bbbbbb", linestyle=":", linewidth=1)
        ax.set_title(LABELS[metric] + (" (chance 50%)" if "judge" in metric else ""))
        ax.set_xlabel("policy step")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("held-out accuracy (%)")
    axes[-1].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_final(summary: Mapping[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = model_names(summary)
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(8.5, 3.8))
    for index, name in enumerate(names):
        values = [100 * (summary[name].get(m) or 0.0) for m in METRICS]
        xs = [i + (index - (len(names) - 1) / 2) * width for i in range(len(METRICS))]
        bars = ax.bar(xs, values, width, label=name, color=COLOURS.get(name))
        ax.bar_label(bars, fmt="%.0f", fontsize=7)
    ax.axhline(50, color="#bbbbbb", linestyle=":", linewidth=1)
    ax.set_xticks(range(len(METRICS)), [LABELS[m] for m in METRICS])
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=8, ncol=len(names))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_training(runs: Path, names: Sequence[str], path: Path) -> None:
    """Per-round training signals from each run's metrics.jsonl (sampled, not greedy)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = (("spark/policy_reward", "policy reward (sampled)"), ("spark/pairwise_accuracy", "pairwise judge reward on recycled items"),
              ("spark/pointwise_accuracy", "pointwise judge reward on recycled items"))
    fig, axes = plt.subplots(1, len(series), figsize=(4.2 * len(series), 3.4), sharey=True)
    for ax, (key, title) in zip(axes, series):
        for name in names:
            rows = [r for r in read_metrics(runs / name) if key in r]
            if rows:
                ax.plot([r.get("spark/policy_rounds", r["step"]) for r in rows], [100 * r[key] for r in rows],
                        label=name, color=COLOURS.get(name), linewidth=1.2)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("policy step")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("%")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(summary: Mapping[str, Any], out: Path) -> Path:
    plot_curves(summary["curves"], out / "curves.png")
    plot_final(summary, out / "final.png")
    runs = [n for n in model_names(summary) if n != "warmstart"]
    plot_training(out / "runs", runs, out / "training.png")
    warm = summary["warm_start"]
    shipped = (f" The warm start is the one sparkrl ships (`{warm['shipped']}`, built once with seed "
               f"{warm['recipe']['seed']}): this run's seed varies RL and the held-out items only." if warm.get("shipped") else "")
    line = equal_rounds(summary)
    rounds = f"\n{line}\n" if line else ""
    text = f"""# sparkrl demo ({summary['modality']}{', quick' if summary['quick'] else ''}), seed {summary['seed']}

Plain GRPO and SPARK trained from the same warm-started tiny model, {summary['policy_steps']} policy
steps each, same GRPO settings. SPARK also trains on judge and reflection items recycled from its
own rollouts. The warm start taught every format; its judge verdicts were
{warm.get('judge_verdicts', 'drawn at random')}, and its reflection targets fresh solutions (docs/tiny.md).{shipped}
Everything below is measured on
held-out problems with greedy decoding; judge items are built from the task's own right and wrong
solutions, with balanced labels (chance = 50%); pairwise items are asked in both orders.

## Final models

{results_table(summary)}

## The claims, checked on this run

{claims_table(check_claims(summary))}
{rounds}
![final](final.png)

## Along the way (held-out, greedy)

![curves](curves.png)

{curves_table(summary['curves'])}

## During training (sampled rollouts, from each run's metrics.jsonl)

![training](training.png)

## Run

- wall time: {summary['wall_seconds']:.0f} s (training: {', '.join(f'{k} {v:.0f} s' for k, v in summary['train_seconds'].items()) or 'resumed'})
- warm start: {warm.get('steps', '?')} steps, {warm.get('parameters', '?')} parameters, {warm.get('seconds_with_data', 0):.0f} s{' when it was built (shipped)' if warm.get('shipped') else ''}
- models (Hugging Face folders for `sparkrl eval` / `sparkrl train`): `models/<name>`
- per-item outputs of every evaluation: `eval/<name>/<kind>/*.jsonl`; run logs: `runs/<name>/`
"""
    path = out / "report.md"
    path.write_text(text)
    return path
