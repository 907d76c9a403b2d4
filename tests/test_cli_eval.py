"""`sparkrl eval` end to end on CPU: every kind with every strategy on a tiny model, an
OpenAI-compatible server, the errors users see, and `sparkrl eval report` of two runs."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sparkrl.cli import main

STRATEGIES = ("single", "reflection", "best_of_n", "majority", "weighted_majority")
SOLVERS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def data(tmp_path: Path) -> dict[str, str]:
    reasoning = write_jsonl(tmp_path / "r.jsonl", [{"question": f"{i}+1?", "answer": f"{i + 1}"} for i in range(3)])
    pointwise = write_jsonl(
        tmp_path / "p.jsonl", [{"question": "1+1?", "response": f"A: {i}", "correct": i == 2} for i in range(3)]
    )
    solutions = write_jsonl(
        tmp_path / "s.jsonl",
        [
            {"question": f"{i}+1?", "ground_truth": f"A: {i + 1}",
             **{s: {"is_correct": j % 2 == 0, "solution": f"w\nA: {i + 1 + j % 2}"} for j, s in enumerate(SOLVERS)}}
            for i in range(3)
        ],
    )
    return {"reasoning": str(reasoning), "pointwise": str(pointwise), "pairwise": f"gsm8k-solutions:{solutions}"}


@pytest.mark.parametrize("kind", ["reasoning", "pointwise", "pairwise"])
def test_every_kind_and_strategy_end_to_end_on_a_tiny_model(kind, data, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    strategies = [arg for s in STRATEGIES for arg in ("--strategy", s)]
    argv = [
        "eval", kind, "--model", str(tiny_model_dir), "--data", data[kind], "--out", str(out), *strategies,
        "--n", "2", "--temperature", "1.0", "--max-new-tokens", "4", "--judge-max-new-tokens", "4",
        "--judge-samples", "2", "--limit", "2", "--batch-size", "4", "--seed", "1",
        *(["--templates", "tiny"] if kind == "pointwise" else []),
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "single: accuracy" in captured.out
    assert "weighted_majority" in captured.err  # the progress bars
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kind"] == kind and summary["n"] == 2
    assert set(summary["strategies"]) == set(STRATEGIES)
    for name in STRATEGIES:
        stats = summary["strategies"][name]
        assert stats["n"] == 2 and 0.0 <= stats["accuracy"] <= 1.0
        records = [json.loads(line) for line in (out / f"{name}.jsonl").read_text().splitlines()]
        assert [r["index"] for r in records] == [0, 1]
        assert all(p["final"] == p["candidates"][0]["text"] or name != "single" for r in records for p in r["probes"])
        assert len(records[0]["probes"]) == (2 if kind == "pairwise" else 1)
    assert "| reflection |" in (out / "summary.md").read_text()
    pointwise_pool = json.loads((out / "config.json").read_text())["config"]["settings"]["templates"]["pointwise"]
    from sparkrl.tiny.templates import TINY_TEMPLATES

    assert (pointwise_pool == list(TINY_TEMPLATES.pointwise)) == (kind == "pointwise")
    # A second identical run finds everything done.
    assert main(argv) == 0
    assert all(len((out / f"{n}.jsonl").read_text().splitlines()) == 2 for n in STRATEGIES)


class _AlwaysA(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        choices = [{"index": i, "message": {"content": "\\boxed{A}"}} for i in range(request["n"])]
        body = json.dumps({"choices": choices}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_pairwise_over_an_openai_endpoint(data, tmp_path, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AlwaysA)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    monkeypatch.setenv("SPARKRL_TEST_KEY", "k")
    try:
        code = main([
            "eval", "pairwise", "--backend", "openai", "--base-url", f"http://127.0.0.1:{server.server_address[1]}",
            "--api-key-env", "SPARKRL_TEST_KEY", "--model", "served", "--data", data["pairwise"],
            "--out", str(tmp_path / "out"), "--no-progress",
        ])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert code == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["accuracy"] == 0.5 and summary["strategies"]["single"]["position_consistency"] == 0.0


def test_reasoning_with_the_vllm_backend_passes_engine_options(data, tmp_path, fake_vllm, capsys):
    def solve(messages: list[dict]) -> str:
        left = re.search(r"(\d+)\+1\?", messages[-1]["content"])
        return f"so \\boxed{{{int(left.group(1)) + 1}}}"

    fake = fake_vllm(solve)
    out = tmp_path / "out"
    argv = [
        "eval", "reasoning", "--backend", "vllm", "--model", "org/model", "--data", data["reasoning"],
        "--out", str(out), "--no-progress", "--tensor-parallel-size", "4", "--gpu-memory-utilization", "0.7",
        "--max-model-len", "8192", "--dtype", "bfloat16", "--seed", "5",
    ]
    assert main(argv) == 0
    assert fake.llm_kwargs == [{"model": "org/model", "tensor_parallel_size": 4, "gpu_memory_utilization": 0.7,
                                "max_model_len": 8192, "dtype": "bfloat16", "seed": 5}]
    assert "single: accuracy 1.000 on 3 items" in capsys.readouterr().out
    records = [json.loads(line) for line in (out / "single.jsonl").read_text().splitlines()]
    assert [r["probes"][0]["extracted"] for r in records] == ["1", "2", "3"]


def test_bad_vllm_engine_option_is_a_user_error(data, tmp_path, fake_vllm, capsys):
    fake_vllm(lambda messages: "")
    argv = ["eval", "reasoning", "--backend", "vllm", "--model", "m", "--data", data["reasoning"],
            "--out", str(tmp_path), "--gpu-memory-utilization", "1.5"]
    assert main(argv) == 2
    assert "gpu_memory_utilization must be in (0, 1]" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--backend", "vllm"], "vllm"),
        (["--backend", "openai"], "needs --base-url"),
        (["--limit", "0"], "--limit"),
        (["--n", "0"], "n must be >= 1"),
    ],
)
def test_user_errors_are_reported_without_tracebacks(extra, message, data, tmp_path, capsys):
    argv = ["eval", "reasoning", "--model", "m", "--data", data["reasoning"], "--out", str(tmp_path), *extra]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_bad_data_file_names_the_file(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q"}\n')
    assert main(["eval", "pointwise", "--model", "m", "--data", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "bad.jsonl, line 1" in capsys.readouterr().err


def test_report_compares_two_evaluations_end_to_end(data, tmp_path, fake_vllm, capsys):
    def solve(messages: list[dict]) -> str:
        left = int(re.search(r"(\d+)\+1\?", messages[-1]["content"]).group(1))
        return f"\\boxed{{{left + (2 if 'WRONG' in messages[-1]['content'] else 1)}}}"

    fake_vllm(solve)
    common = ["eval", "reasoning", "--backend", "vllm", "--data", data["reasoning"], "--no-progress"]
    assert main([*common, "--model", "m", "--out", str(tmp_path / "base"), "--suffix", "WRONG"]) == 0
    assert main([*common, "--model", "org/model", "--out", str(tmp_path / "spark")]) == 0
    out = tmp_path / "report"
    argv = ["eval", "report", str(tmp_path / "base"), str(tmp_path / "spark"), "--out", str(out)]
    assert main([*argv, "--names", "base,spark", "--baseline", "base"]) == 0
    assert "| spark | 100.0 | 100.0 |" in capsys.readouterr().out
    table = (out / "report.md").read_text()
    assert "| model | r/reasoning | average |" in table and "| spark | +100.0 | +100.0 |" in table
    assert (out / "report.csv").read_text().splitlines()[1] == "base,0,0,0,0"
    assert (out / "report.png").is_file()
    assert main(argv) == 0  # without --names: the backends' model names
    assert "| org/model | 100.0 | 100.0 |" in capsys.readouterr().out


def test_report_refuses_a_folder_without_summary(tmp_path, capsys):
    (tmp_path / "unfinished").mkdir()
    assert main(["eval", "report", str(tmp_path / "unfinished"), "--out", str(tmp_path / "report")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"{tmp_path / 'unfinished'}: no summary.json" in error
    assert not (tmp_path / "report").exists()
