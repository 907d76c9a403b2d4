"""The embedded demo: its claim checks (pure) and one quick run through the command line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sparkrl.demo.claims import check_claims
from sparkrl.demo.measure import METRICS


def _row(policy: float, pointwise: float, pairwise: float, reflection: float) -> dict[str, float]:
    return dict(zip(METRICS, (policy, pointwise, pairwise, reflection)))


def test_claims_hold_only_when_the_numbers_say_so():
    # _row(policy, pointwise, pairwise, self-reflection)
    good = {"grpo": _row(0.80, 0.52, 0.48, 0.80), "spark": _row(0.85, 0.93, 0.95, 0.90), "wall_seconds": 590.0}
    assert all(c.holds for c in check_claims(good))
    assert len(check_claims(good)) == 8
    bad = {"grpo": _row(0.95, 0.70, 0.80, 0.95), "spark": _row(0.96, 0.89, 0.50, 0.97), "wall_seconds": 610.0}
    held = {c.name: c.holds for c in check_claims(bad)}
    assert not any(held.values()), held
    assert "95.0%" in check_claims(bad)[0].detail  # GRPO's saturated policy
    # The margins are at least 3 points, not merely "not worse".
    close = {"grpo": _row(0.80, 0.5, 0.5, 0.80), "spark": _row(0.82, 0.95, 0.95, 0.84)}
    names = {c.name: c.holds for c in check_claims(close)}
    assert [held for name, held in names.items() if "+ 3 points" in name] == [False, False]
    transitions = {**close, "spark": {**close["spark"], "self_reflection_wrong_to_right": 7,
                                      "self_reflection_right_to_wrong": 3}}
    assert "wrong to right 7, right to wrong 3" in check_claims(transitions)[-1].detail


def test_policy_lead_needs_spark_to_beat_the_warm_start_too():
    # Run 32 of the digit note: both policies flat, plain GRPO's 4 points down, SPARK's where it began.
    flat = {"warmstart": _row(0.50, 0.64, 0.585, 0.51), "grpo": _row(0.46, 0.64, 0.595, 0.45),
            "spark": _row(0.50, 0.98, 0.975, 0.56)}
    lead = next(c for c in check_claims(flat) if c.name.startswith("SPARK's policy"))
    assert not lead.holds
    assert "+4.0 points; from the warm start's 50.0%: SPARK +0.0 points, GRPO -4.0 points" in lead.detail
    learnt = {**flat, "spark": _row(0.53, 0.98, 0.975, 0.56)}
    assert next(c for c in check_claims(learnt) if c.name.startswith("SPARK's policy")).holds


def test_the_policy_lead_reports_its_paired_standard_error():
    from sparkrl.demo.claims import paired_standard_error

    # Seed 2 of run 34: 19 problems right for SPARK alone, 15 for plain GRPO alone, of 200.
    assert paired_standard_error(200, 19, 15) == pytest.approx(0.02912, abs=1e-5)
    assert paired_standard_error(10, 0, 0) == 0.0  # the same answers everywhere: no noise
    assert paired_standard_error(4, 2, 2) == pytest.approx(0.5)  # differences of +1, +1, -1, -1
    for bad in ((0, 0, 0), (10, -1, 0), (10, 6, 5)):
        with pytest.raises(ValueError, match="paired counts"):
            paired_standard_error(*bad)
    summary = {"grpo": _row(0.635, 0.6, 0.6, 0.6), "spark": _row(0.655, 0.95, 0.95, 0.8),
               "policy_paired": {"n": 200, "first_only": 19, "second_only": 15}}
    lead = next(c for c in check_claims(summary) if c.name.startswith("SPARK's policy"))
    assert not lead.holds  # the threshold is still 3 points
    assert lead.detail.endswith("(+2.0 points; paired standard error 2.9 points over 200 problems, "
                                "SPARK alone right on 19, GRPO alone on 15)")


def test_paired_counts_match_items_by_hash_and_name_a_bad_row(tmp_path: Path) -> None:
    from sparkrl.demo.measure import paired_counts

    def write(name: str, rows: list[tuple[str, float]]) -> Path:
        path = tmp_path / name
        path.write_text("".join(json.dumps({"item_hash": h, "correct": c}) + "\n" for h, c in rows))
        return path

    spark = write("spark.jsonl", [("a", 1.0), ("b", 1.0), ("c", 0.0), ("d", 0.0)])
    grpo = write("grpo.jsonl", [("d", 1.0), ("c", 0.0), ("b", 1.0), ("a", 0.0)])  # another order
    assert paired_counts(spark, grpo) == {"n": 4, "first_only": 1, "second_only": 1}
    other = write("other.jsonl", [("a", 1.0), ("b", 1.0), ("c", 0.0), ("e", 0.0)])
    with pytest.raises(ValueError, match="do not hold the same items"):
        paired_counts(spark, other)
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps({"item_hash": "a", "correct": 1.0}) + "\n" + json.dumps({"correct": 1.0}) + "\n")
    with pytest.raises(ValueError, match=r"broken.jsonl: row 2: no item_hash and correct"):
        paired_counts(broken, spark)


def test_image_claims_judge_target_is_80_percent():
    summary = {"modality": "image", "grpo": _row(0.8, 0.5, 0.50, 0.8), "spark": _row(0.9, 0.5, 0.81, 0.95)}
    claims = {c.name: c.holds for c in check_claims(summary)}
    assert claims["SPARK's pairwise judge >= 80.0%"] and not any("pointwise" in name for name in claims)


def _quick_demo_command(out: Path) -> list[str]:
    return [sys.executable, "-m", "sparkrl", "demo", "--quick", "--ablations", "--out", str(out), "--jobs", "2"]


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("demo") / "out"
    command = _quick_demo_command(out)
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, result.stdout


def test_quick_demo_writes_summary_report_plots_and_models(quick_demo: tuple[Path, str]) -> None:
    out, stdout = quick_demo
    summary = json.loads((out / "summary.json").read_text())
    for name in ("warmstart", "grpo", "spark"):
        assert set(METRICS) <= set(summary[name])
        assert all(0.0 <= summary[name][m] <= 1.0 for m in METRICS)
        assert (out / "models" / name / "config.json").exists()
    assert summary["seed"] == 0 and summary["wall_seconds"] > 0
    assert [c["name"] for c in summary["claims"]] == [c.name for c in check_claims(summary)]
    report = (out / "report.md").read_text()
    assert "The claims, checked on this run" in report and "| spark |" in report
    for png in ("curves.png", "final.png", "training.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # progress is shown throughout, and every run logged per-step metrics
    assert "warm start step" in stdout and "evaluated spark" in stdout
    assert (out / "runs" / "spark" / "metrics.jsonl").stat().st_size > 0
    # the curves start at the warm start and end at the final policy step
    steps = [p["policy_step"] for p in summary["curves"]["spark"]]
    assert steps[0] == 0 and steps[-1] == summary["policy_steps"]
    # plain GRPO also runs for SPARK's round budget: the comparison at equal rollouts
    assert summary["curves"]["grpo-rounds"][-1]["policy_step"] == 2 * summary["policy_steps"]
    assert "At equal generation rounds" in report and "At equal generation rounds" in stdout
    # SPARK's and plain GRPO's answers compared item by item, the lead's noise in the claim
    paired = summary["policy_paired"]
    assert paired["n"] == 60 and paired["first_only"] + paired["second_only"] <= 60
    lead = next(c for c in summary["claims"] if c["name"].startswith("SPARK's policy"))
    assert f"over 60 problems, SPARK alone right on {paired['first_only']}" in lead["detail"]


def test_rerunning_the_demo_resumes_instead_of_retraining(quick_demo: tuple[Path, str]) -> None:
    out, _ = quick_demo
    before = json.loads((out / "summary.json").read_text())
    command = _quick_demo_command(out)
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "warm start: already done" in result.stdout
    assert "grpo: already trained" in result.stdout and "spark: already trained" in result.stdout
    after = json.loads((out / "summary.json").read_text())
    for name in ("warmstart", "grpo", "spark"):
        assert after[name] == before[name]  # the same models, the same finished evaluations


def test_demo_models_are_accepted_by_sparkrl_eval(quick_demo: tuple[Path, str], tmp_path: Path) -> None:
    out, _ = quick_demo
    command = [
        sys.executable, "-m", "sparkrl", "eval", "reasoning", "--model", str(out / "models" / "spark"),
        "--data", str(out / "data" / "train.jsonl"), "--out", str(tmp_path / "eval"), "--limit", "4",
        "--templates", "tiny", "--suffix", "", "--max-new-tokens", "48",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "eval" / "summary.json").read_text())["strategies"]["single"]["n"] == 4


def test_self_judging_strategies_run_on_the_demo_model(quick_demo: tuple[Path, str], tmp_path: Path) -> None:
    # The quick warm start writes real verdicts, so self-reflection and self-judged best-of-N
    # exercise the judge end to end (token probabilities of `Yes` included).
    out, _ = quick_demo
    command = [
        sys.executable, "-m", "sparkrl", "eval", "reasoning", "--model", str(out / "models" / "spark"),
        "--data", str(out / "data" / "train.jsonl"), "--out", str(tmp_path / "eval"), "--limit", "6",
        "--templates", "tiny", "--suffix", "", "--max-new-tokens", "48", "--judge-max-new-tokens", "48",
        "--strategy", "reflection", "--strategy", "best_of_n", "--n", "2", "--temperature", "1.0",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert set(summary["strategies"]) == {"reflection", "best_of_n"}
    rounds = [r for line in (tmp_path / "eval" / "reflection.jsonl").read_text().splitlines()
              for probe in json.loads(line)["probes"] for r in probe["rounds"]]
    assert rounds and any(r["verdict"] in ("Yes", "No") for r in rounds)
    candidates = [c for line in (tmp_path / "eval" / "best_of_n.jsonl").read_text().splitlines()
                  for probe in json.loads(line)["probes"] for c in probe["candidates"]]
    assert len(candidates) == 12 and all(c["score"] is not None for c in candidates)


def test_ablations_train_on_one_kind_of_recycled_item_each(quick_demo: tuple[Path, str]) -> None:
    out, _ = quick_demo
    summary = json.loads((out / "summary.json").read_text())
    report = (out / "report.md").read_text()
    for kind in ("pointwise", "pairwise", "reflection"):
        name = f"spark-{kind}"
        assert set(METRICS) <= set(summary[name]) and f"| {name} |" in report
        rows = [json.loads(line) for line in (out / "runs" / name / "metrics.jsonl").read_text().splitlines()]
        others = {"pointwise", "pairwise", "reflection"} - {kind}
        assert all(row.get(f"spark/share_{other}", 0) == 0 for row in rows for other in others)
    # the full SPARK run trained on more than one kind
    rows = [json.loads(line) for line in (out / "runs" / "spark" / "metrics.jsonl").read_text().splitlines()]
    assert sum(any(row.get(f"spark/share_{k}", 0) > 0 for row in rows) for k in ("pointwise", "pairwise", "reflection")) >= 2


def test_fresh_refuses_to_delete_a_folder_that_is_not_a_demo(tmp_path: Path) -> None:
    keep = tmp_path / "project"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    result = subprocess.run([sys.executable, "-m", "sparkrl", "demo", "--quick", "--out", str(keep), "--fresh"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "refuses to delete" in result.stderr
    assert (keep / "notes.txt").read_text() == "mine"


def test_a_demo_folder_with_other_settings_is_not_resumed(tmp_path: Path) -> None:
    from sparkrl.demo.pipeline import check_resumable
    from sparkrl.demo.runs import RunError

    path = tmp_path / "demo-config.json"
    record = {"seed": 0, "modality": "text", "quick": True, "workload": "TextWorkload(quick=True)", "eval_problems": 200,
              "judge_items": 200, "train_problems": 4000, "curve_points": 4, "jobs": 2}
    check_resumable(path, record)  # nothing there yet
    path.write_text(json.dumps(record))
    check_resumable(path, {**record, "jobs": 1})  # how many processes run does not shape results
    with pytest.raises(RunError, match="seed 0 -> 1.*--fresh"):
        check_resumable(path, {**record, "seed": 1})


def test_checkpoints_stand_for_their_policy_step_by_the_latest_global_step(tmp_path: Path) -> None:
    from sparkrl.demo.runs import RunSpec, checkpoints

    spec = RunSpec("spark", {}, tmp_path, 2)
    for step, policy in ((1, 1), (2, 1), (3, 2), (10, 5), (9, 5)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "sparkrl_state.json").write_text(json.dumps({"policy_rounds": policy}))
    assert [(p, f.name) for p, f in checkpoints(spec)] == [(1, "checkpoint-2"), (2, "checkpoint-3"), (5, "checkpoint-10")]


def test_an_interrupted_run_is_trained_again_and_its_model_republished(quick_demo: tuple[Path, str]) -> None:
    # A run without its `finished` mark (killed during its final save, say) is not taken as done.
    out, _ = quick_demo
    (out / "runs" / "grpo" / "finished").unlink()
    shutil.rmtree(out / "models" / "grpo")
    command = _quick_demo_command(out)
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "grpo: training started" in result.stdout and "spark: already trained" in result.stdout
    assert (out / "runs" / "grpo" / "finished").exists() and (out / "models" / "grpo" / "config.json").exists()


def test_side_work_gets_only_the_slots_training_leaves_and_hears_of_every_trained_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sparkrl.demo import runs

    lengths = {"a": 0.2, "b": 4.0, "c": 0.2}
    launched: list[str] = []

    def fake_launch(spec: runs.RunSpec, config: Path) -> subprocess.Popen[bytes]:
        launched.append(spec.name)
        return subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({lengths[spec.name]})"])

    class Recorder:
        def __init__(self) -> None:
            self.trained_runs: list[str] = []
            self.pumps: list[tuple[int, int, bool]] = []  # (runs launched so far, slots given, "b" trained)

        def trained(self, spec: runs.RunSpec) -> None:
            self.trained_runs.append(spec.name)

        def pump(self, slots: int) -> None:
            self.pumps.append((len(launched), slots, "b" in self.trained_runs))

    monkeypatch.setattr(runs, "_launch", fake_launch)
    specs = [runs.RunSpec(name, {"policy_steps": 1}, tmp_path / name, 1) for name in lengths]
    for spec in specs:
        spec.folder.mkdir()
    side = Recorder()
    seconds = runs.train_all(specs, {name: tmp_path for name in lengths}, 2, lambda line: None, side=side)
    assert set(seconds) == set(lengths) and sorted(side.trained_runs) == sorted(lengths)
    assert side.trained_runs[-1] == "b"
    # Nothing is given while a run still waits to start; then only the slots no run holds:
    # at most one while "b" trains (with "c" too at first), two once it has ended.
    assert side.pumps and all(started == 3 for started, _, _ in side.pumps)
    assert all(slots <= 1 for _, slots, b_done in side.pumps if not b_done)
    assert 1 in {slots for _, slots, _ in side.pumps}
    # Runs trained in an earlier demo run are handed over at once, without training them again.
    for spec in specs:
        spec.final.mkdir()
    launched.clear()
    again = Recorder()
    runs.train_all(specs, {name: tmp_path for name in lengths}, 2, lambda line: None, side=again)
    assert again.trained_runs == ["a", "b", "c"] and launched == []


def test_a_failed_evaluation_is_reported_after_the_others_finish(tmp_path: Path) -> None:
    from concurrent.futures import Future

    from sparkrl.demo.pipeline import DemoConfig, Evaluations
    from sparkrl.demo.runs import RunError

    class StubPool:  # runs "measurements" at once, in this process
        def submit(self, fn, job):
            future: Future = Future()
            if "broken" in job.model:
                future.set_exception(OSError("no such model"))
            else:
                future.set_result({"policy_accuracy": 1.0})
            return future

        def shutdown(self, wait: bool, cancel_futures: bool) -> None:
            pass

    config = DemoConfig(out=tmp_path, quick=True, eval_problems=2, judge_items=2, jobs=2)
    lines: list[str] = []
    with pytest.raises(RunError, match="evaluation of broken failed: OSError: no such model"):
        with Evaluations(config, config.workload(), tmp_path, tmp_path / "warm", lines.append) as evaluations:
            evaluations.pool.shutdown(wait=True, cancel_futures=True)
            evaluations.pool = StubPool()
            evaluations.queue.append(("broken", evaluations._job(tmp_path / "broken", tmp_path / "e", True)))
            evaluations.queue.append(("grpo", evaluations._job(tmp_path / "grpo", tmp_path / "e2", True)))
            evaluations.finish(2)
    # The others were still measured; the failure was reported when it happened.
    assert set(evaluations.measured) == {"warmstart", "grpo"}
    assert any(line.startswith("evaluation of broken failed") for line in lines)


def test_equal_rounds_is_reported_whatever_it_shows() -> None:
    from sparkrl.demo.claims import equal_rounds

    summary = {"grpo": _row(0.80, 0.5, 0.5, 0.8), "spark": _row(0.84, 0.95, 0.95, 0.9), "policy_steps": 120}
    assert equal_rounds(summary) is None  # no such run
    curves = {"grpo-rounds": [{"policy_step": 0}, {"policy_step": 240}]}  # the run's own last step
    line = equal_rounds({**summary, "grpo-rounds": _row(0.87, 0.5, 0.5, 0.87), "curves": curves})
    assert line is not None and "240 policy steps" in line and "SPARK 84.0% vs GRPO 87.0% (-3.0 points)" in line


def test_a_shipped_warm_start_is_copied_only_for_its_own_recipe(tmp_path: Path) -> None:
    from dataclasses import replace

    from sparkrl.demo.pipeline import _warm_start, shipped_report
    from sparkrl.demo.runs import RunError
    from sparkrl.demo.workload import text_workload

    workload = text_workload("digit")
    shipped = tmp_path / "shipped" / "digit"
    shipped.mkdir(parents=True)
    (shipped / "config.json").write_text("{}")
    report = {"steps": 5000, "recipe": workload.warm_start_recipe(0)}
    (shipped / "warmstart.json").write_text(json.dumps(report))

    class Shipping:  # the digit workload, shipping from a folder of this test
        def __getattr__(self, name: str):
            return getattr(workload, name)

        def shipped_warm_start(self) -> Path:
            return shipped

        def warm_start(self, *args):
            raise AssertionError("a shipped warm start is copied, not built")

    messages: list[str] = []
    copied = _warm_start(Shipping(), tmp_path / "demo" / "models" / "warmstart", 3, messages.append)  # type: ignore[arg-type]
    assert copied["shipped"] == "digit" and copied["recipe"]["seed"] == 0  # the demo's seed 3 varies RL only
    assert (tmp_path / "demo" / "models" / "warmstart" / "config.json").exists()
    assert "the shipped one" in messages[0]
    # A warm start recorded for other settings is refused, naming the file and what differs.
    other = replace(workload, judge_slip=0.5)
    with pytest.raises(RunError, match=r"warmstart.json: built for other settings \(task differ\)"):
        shipped_report(other, shipped)  # type: ignore[arg-type]
    (shipped / "warmstart.json").write_text("{}")
    with pytest.raises(RunError, match="not a shipped warm start"):
        shipped_report(workload, shipped)  # type: ignore[arg-type]


def test_the_packaged_warm_start_matches_the_default_format() -> None:
    # The folder sparkrl ships was built with the `digit` format's current recipe; a change to
    # that recipe without rebuilding it (docs/demo.md) fails here rather than in a user's demo.
    from sparkrl.demo.pipeline import shipped_report
    from sparkrl.demo.workload import text_workload

    workload = text_workload("digit")
    folder = workload.shipped_warm_start()
    assert folder is not None and (folder / "model.safetensors").stat().st_size > 1_000_000
    report = shipped_report(workload, folder)
    assert report["recipe"]["seed"] == 1 and report["steps"] == 5000
    assert text_workload("digit", quick=True).shipped_warm_start() is None  # quick builds its own


def test_quick_demos_measure_fewer_held_out_items() -> None:
    from sparkrl.demo.pipeline import DemoConfig

    assert DemoConfig(out=Path("x")).held_out_sizes == (200, 200)
    assert DemoConfig(out=Path("x"), quick=True).held_out_sizes == (60, 60)
    assert DemoConfig(out=Path("x"), quick=True, eval_problems=2, judge_items=2).held_out_sizes == (2, 2)
