"""End-to-end tests of `sparkrl recycle` on small JSONL files, including bad input rows."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from sparkrl.cli import main
from sparkrl.rows import Example


def _row(rewards, question="What is 6*7?", gold="42", **extra):
    texts = [f"6*7 = 42, so \\boxed{{42}}" if r else f"6*7 = {40 + i}. The answer is {40 + i}" for i, r in
             enumerate(rewards)]
    rollouts = [{"text": t, "reward": r} for t, r in zip(texts, rewards)]
    return {"question": question, "answer": gold, "rollouts": rollouts, **extra}


def _write(tmp_path, rows, name="rollouts.jsonl"):
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def _recycle(tmp_path, rows, *flags):
    rollouts, out = _write(tmp_path, rows), tmp_path / "out" / "items.jsonl"
    code = main(["recycle", "--rollouts", str(rollouts), "--out", str(out), *flags])
    return code, out


def test_recycle_writes_items_and_prints_statistics(tmp_path, capsys):
    rows = [_row([1, 0, 0, 1], images=["fig.png"]), _row([1, 1]), _row([0, 0, 0]), "", _row([True, False])]
    code, out = _recycle(tmp_path, rows, "--seed", "3", "--judge-per-group", "none")
    assert code == 0
    items = [Example.from_dict(json.loads(line)) for line in out.read_text(encoding="utf-8").splitlines()]
    stats = json.loads(capsys.readouterr().out)
    assert stats["groups"] == 4 and stats["rollouts"] == 11 and sum(stats["items"].values()) == len(items)
    assert {i.task for i in items} <= {"pointwise", "pairwise", "reflection"} and items
    for item in items:
        assert item.source["group_source"]["file"].endswith("rollouts.jsonl")
        row = item.source["group_source"]["row"]
        assert item.images == (("fig.png",) if row == 1 else ())
        if item.task == "pointwise" and item.source["mode"] == "yes_no":
            # The candidate shown is the extracted final answer, never the reasoning.
            assert "6*7 =" not in item.question.split("6*7?", 1)[1]
        if item.task == "reflection":
            assert item.answer == "42"
    again_code, again = _recycle(tmp_path, rows, "--seed", "3", "--judge-per-group", "none")
    assert again_code == 0 and again.read_text() == out.read_text()


def test_kinds_caps_and_no_balance_flags(tmp_path, capsys):
    rows = [_row([1, 1, 1])] * 6
    code, out = _recycle(tmp_path, rows, "--kinds", "pointwise", "--no-balance", "--judge-per-group", "none")
    assert code == 0
    items = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(items) == 6 and all(i["answer"] in ("Yes", "A") for i in items)
    capsys.readouterr()
    code, out = _recycle(tmp_path, rows, "--kinds", "pointwise", "--max-judge", "2", "--no-balance")
    assert code == 0 and len(out.read_text().splitlines()) == 2
    code, out = _recycle(tmp_path, rows, "--kinds", "pointwise")
    labels = Counter(json.loads(line)["answer"] for line in out.read_text().splitlines())
    assert code == 0 and labels["Yes"] <= 1 and labels["A"] <= 1


def test_both_orders_flag_gives_each_pair_at_a_and_at_b(tmp_path, capsys):
    rows = [_row([1, 0, 0, 1], question=f"What is 6*7? ({i})") for i in range(3)]
    flags = ("--kinds", "pairwise", "--judge-per-group", "none", "--mixed-pointwise-prob", "0")
    code, out = _recycle(tmp_path, rows, *flags, "--both-orders")
    items = [json.loads(line) for line in out.read_text().splitlines()]
    assert code == 0 and len(items) == 6
    for row in range(1, 4):
        mine = [i for i in items if i["source"]["group_source"]["row"] == row]
        assert sorted(i["answer"] for i in mine) == ["A", "B"]
    capsys.readouterr()
    code, out = _recycle(tmp_path, rows, *flags)
    assert code == 0 and len(out.read_text().splitlines()) == 3


@pytest.mark.parametrize("flags,judge,reflection", [
    ((), 4, 4),  # the default: half a group each, as the authors' 32 + 32 per 64 prompts
    (("--judge-per-group", "0.25", "--reflection-per-group", "none"), 2, 8),
    (("--judge-per-group", "none", "--max-judge", "3", "--max-reflection", "1"), 3, 1),
])
def test_caps_scale_with_the_number_of_groups(tmp_path, capsys, flags, judge, reflection):
    rows = [_row([1, 0, 0, 1])] * 8
    code, _ = _recycle(tmp_path, rows, *flags)
    items = json.loads(capsys.readouterr().out)["items"]
    assert code == 0 and (items["pointwise"] + items["pairwise"], items["reflection"]) == (judge, reflection)


@pytest.mark.parametrize("bad_row,message", [
    ("{not json", "row 2: invalid JSON"),
    ([1, 2], "row 2: expected a JSON object"),
    ({"answer": "1", "rollouts": [{"text": "x", "reward": 1}]}, "row 2: missing field 'question'"),
    ({"question": "q", "rollouts": [{"text": "x", "reward": 1}]}, "row 2: missing field 'answer'"),
    ({"question": "q", "answer": "1"}, "row 2: missing field 'rollouts'"),
    ({"question": "q", "answer": "1", "rollouts": []}, "row 2: field 'rollouts' is empty"),
    ({"question": "q", "answer": "1", "rollouts": "x"}, "row 2: field 'rollouts' must be list"),
    ({"question": "q", "answer": "1", "rollouts": [{"text": "x"}]}, "row 2 rollouts[0]: missing field 'reward'"),
    ({"question": "q", "answer": "1", "rollouts": [{"text": "x", "reward": "1"}]},
     "row 2 rollouts[0]: field 'reward' must be"),
    ({"question": "q", "answer": "1", "rollouts": [{"text": 5, "reward": 1}]}, "row 2 rollouts[0]: field 'text'"),
    ({"question": "q", "answer": "1", "rollouts": [{"text": "x", "reward": float("nan")}]},
     "row 2 rollouts[0]: rollout reward"),
    ({"question": "q", "answer": "1", "images": "a.png", "rollouts": [{"text": "x", "reward": 1}]},
     "row 2: field 'images'"),
    ({"question": "q", "answer": " ", "rollouts": [{"text": "x", "reward": 1}]}, "row 2: group answer"),
    ({"question": "q", "answer": True, "rollouts": [{"text": "x", "reward": 1}]}, "row 2: field 'answer'"),
])
def test_bad_rows_name_file_row_and_field(tmp_path, capsys, bad_row, message):
    code, out = _recycle(tmp_path, [_row([1, 0]), bad_row])
    assert code == 2 and not out.exists()
    err = capsys.readouterr().err
    assert "rollouts.jsonl" in err and message in err


def test_missing_file_and_bad_options_exit_2(tmp_path, capsys):
    out = tmp_path / "items.jsonl"
    assert main(["recycle", "--rollouts", str(tmp_path / "nope.jsonl"), "--out", str(out)]) == 2
    assert "nope.jsonl" in capsys.readouterr().err
    code, _ = _recycle(tmp_path, [_row([1, 0])], "--kinds", "pointwise,judging")
    assert code == 2 and "kinds" in capsys.readouterr().err
    for flag, value in (("--max-judge", "-3"), ("--judge-per-group", "-0.5"), ("--reflection-per-group", "inf")):
        with pytest.raises(SystemExit) as exit_info:
            _recycle(tmp_path, [_row([1, 0])], flag, value)
        assert exit_info.value.code == 2
