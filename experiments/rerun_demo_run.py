"""Train one of a demo folder's RL runs again, with changed settings, and measure it.

A diagnostic for tuning the demo without its warm start and its other run: it takes
`DIR/runs/<run>/config.yaml` of a finished `sparkrl demo --out DIR` (text workload), changes
the keys given as `section.key=VALUE` (VALUE read as `sparkrl train`'s overrides read it), trains it with `sparkrl train`
(one process, one thread, as the demo does) and measures the checkpoint at optimizer step 120
and the final model on the demo's held-out problems and judge items (same seed, same items;
greedy; no self-reflection). It prints one JSON line: training seconds, the measurements, and
how many of the run's rounds were recycled.

    python experiments/rerun_demo_run.py runs/demo-seed2 runs/rerun-lr5e-4 grpo.learning_rate=5e-4
    python experiments/rerun_demo_run.py runs/demo-seed2 runs/rerun-floor grpo.lr_scheduler_type=cosine_with_min_lr \\
        'grpo.lr_scheduler_kwargs={min_lr_rate: 0.2}'
    python experiments/rerun_demo_run.py runs/demo-seed1 runs/rerun-grpo --run grpo grpo.learning_rate=5e-4

Two at a time fit a 2-core machine (each trains on one thread), as in the demo; times are
then those of two runs sharing the machine. Run it from the folder the demo ran in (its
configuration names the warm start and data by the paths the demo was given). OUT must not hold
a run already: training would resume it and its metrics would be counted twice.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from sparkrl.config import apply_overrides, parse_yaml
from sparkrl.demo.measure import MeasureJob, measure
from sparkrl.demo.pipeline import held_out_items
from sparkrl.demo.runs import read_metrics
from sparkrl.demo.workload import TEXT_FORMATS, text_workload


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("demo", type=Path, help="a finished `sparkrl demo` folder (text workload)")
    parser.add_argument("out", type=Path, help="folder for the new run, its log and measurements")
    parser.add_argument("--run", default="spark", help="which of the demo's runs (spark, grpo, ...)")
    parser.add_argument("settings", nargs="*", metavar="SECTION.KEY=VALUE")
    args = parser.parse_intermixed_args()
    record = json.loads((args.demo / "demo-config.json").read_text())
    if record.get("modality") != "text" or record.get("text_format") not in TEXT_FORMATS:
        raise SystemExit(f"{args.demo}: not a demo folder of the text workload")
    if (args.out / "run").exists():
        raise SystemExit(f"{args.out / 'run'} exists: give a new OUT folder")
    config = apply_overrides(parse_yaml((args.demo / "runs" / args.run / "config.yaml").read_text()), args.settings)
    args.out.mkdir(parents=True, exist_ok=True)
    config["output_dir"] = str(args.out / "run")
    (args.out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    started = time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    with open(args.out / "train.log", "wb") as log:
        subprocess.run([sys.executable, "-m", "sparkrl", "train", "--config", str(args.out / "config.yaml")],
                       stdout=log, stderr=subprocess.STDOUT, env=env, check=True)
    result: dict[str, Any] = {"train_seconds": round(time.perf_counter() - started), "settings": args.settings}

    workload = text_workload(record["text_format"], record.get("quick", False))
    items = held_out_items(workload, args.demo / "data", record["eval_problems"], record["judge_items"], int(record["seed"]))
    tokens = int(workload.grpo_settings()["max_completion_length"])
    for name in ("checkpoint-120", "final"):
        folder = args.out / "run" / name
        if folder.exists():
            job = MeasureJob(str(folder), str(args.out / "eval" / name), items, workload.templates, tokens, reflection=False)
            result[name] = {key: round(value, 4) for key, value in measure(job).items()}
    rows = [row for row in read_metrics(args.out / "run") if "loss" in row]
    result["recycled_rounds"] = sum(row.get("spark/share_policy", 1.0) < 1.0 for row in rows)
    result["rounds"] = len(rows)
    print(json.dumps(result))
    (args.out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
