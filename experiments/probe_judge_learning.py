"""Can the warm-started tiny model learn to judge at all, given labelled verdicts?

A diagnostic, not part of the demo. It asks how hard the judging skill is for the tiny model,
by the easiest route there is: supervised fine-tuning on pairwise judge replies whose worked
solution is always right and whose verdict is always right (the letter of the candidate that
equals the worked answer). RL, which sees a noisy reward per sample instead of the label, needs
at least as many items as this. The demo's warm start never sees such data (its verdicts are
random); this script only starts from the demo's warm-started model.

    python experiments/probe_judge_learning.py --model runs/demo-seed0/models/warmstart
    python experiments/probe_judge_learning.py --modality image --model runs/demo-image-seed0/models/warmstart

Without `--model` it first builds and warm-starts a tiny model itself (the demo's warm-start
data and settings) on the task format given by `--asked`, `--explicit-carries` and
`--templates`, so formats can be compared from scratch, e.g. the one-token, fixed-distance one:

    python experiments/probe_judge_learning.py --asked tens --explicit-carries --templates tiny-fixed --blocks 4 --steps 250

Prints, after every block of supervised steps, the held-out pairwise accuracy (greedy, 200
balanced test-split items of `sparkrl.tiny.task.judge_examples`, each asked in one order, so
chance is 50% but the number is not the demo report's, which asks every item in both orders)
the share of replies that copied both candidates correctly, and the share whose own worked
answer is right.
"""

from __future__ import annotations

import argparse
import random
import re
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from sparkrl.demo.workload import TextWorkload
from sparkrl.templates import TemplateSet, pairwise_prompt, resolve_templates
from sparkrl.tiny.measure import complete
from sparkrl.tiny.task import TaskConfig, correct_solution, generate_problems, judge_examples, wrong_answer
from sparkrl.tiny.templates import TINY_TEMPLATES
from sparkrl.tiny.warmstart import SupervisedPair, WarmStartConfig, judge_reply, warm_start


def labelled_pairs(task: TaskConfig, n: int, seed: int, templates: TemplateSet = TINY_TEMPLATES) -> list[SupervisedPair]:
    rng = random.Random(f"probe-judge/{seed}")
    pairs = []
    for problem in generate_problems(task, "train", n, seed):
        wrong, right = wrong_answer(problem, rng), rng.choice("AB")
        a, b = (problem.answer, wrong) if right == "A" else (wrong, problem.answer)
        prompt = pairwise_prompt(problem.question, a, b, rng, templates=templates)
        reply = judge_reply(correct_solution(problem), f"A: {a} B: {b}", right)
        pairs.append(SupervisedPair(prompt, reply, "pairwise", right, right))
    return pairs


def held_out_scores(model, tokenizer, task: TaskConfig, templates: TemplateSet = TINY_TEMPLATES) -> dict[str, float]:
    """Pairwise accuracy, candidates copied, own worked answer right (greedy, 200 test items);
    for replies in the "notes" style also the share whose verdict follows the notes."""
    rows = judge_examples(task, "test", 200, 0, "pairwise", templates)
    replies = [r[0] for r in complete(model, tokenizer, [row.question for row in rows], max_new_tokens=48)]
    right = copied = own = noted = follows = 0
    for row, reply in zip(rows, replies):
        right += reply.rstrip().endswith(f"\\boxed{{{row.answer}}}")
        a, b = re.search(r"A: (\d+)", row.question).group(1), re.search(r"B: (\d+)", row.question).group(1)
        worked, _, rest = reply.partition("}")
        copied += f"A: {a}" in rest and f"B: {b}" in rest
        own += worked.endswith(f"\\boxed{{{row.source['truth']}")
        notes = re.search(r"A: \d+(==|!=)\d+ B: \d+(==|!=)\d+ \\boxed\{([AB])\}", rest)
        if notes:
            noted += 1
            follows += notes.group(3) == ("A" if notes.group(1) == "==" else "B")
    scores = {"pairwise": right / len(rows), "copied": copied / len(rows), "own answer right": own / len(rows)}
    if noted:
        scores["verdict follows notes"] = follows / noted
    return scores


def from_scratch(workload: TextWorkload, seed: int):
    """The demo's warm start (`TextWorkload.warm_start`: data, steps, model size) on the
    workload's task format, saved to a temporary folder and loaded back."""
    folder = Path(tempfile.mkdtemp(prefix="probe-judge-warmstart-"))
    report = workload.warm_start(folder, seed, progress=print)
    print(f"warm start: {report['steps']} steps in {report['seconds']:.0f}s ({folder})", flush=True)
    return AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)


def show(scores: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.3f}" for name, value in scores.items())


def image_probe(args: argparse.Namespace) -> None:
    """The same question for the image task, whose answers are one-digit counts: labelled
    pairwise replies (right count, candidates copied, right letter) on train boards, then the
    demo's held-out items through `sparkrl.demo.measure` (pairwise asked in both orders)."""
    from sparkrl.demo.measure import MeasureJob, measure
    from sparkrl.models import freeze_parameters, load_model_and_tokenizer
    from sparkrl.tiny.task import boxed_answer
    from sparkrl.tiny_vl.task import correct_solution as count_solution
    from sparkrl.tiny_vl.task import generate_problems as boards
    from sparkrl.tiny_vl.task import wrong_solution
    from sparkrl.tiny_vl.warmstart import ImagePair, warm_start_vl
    from sparkrl.tiny_vl.workload import ImageWorkload

    workload = ImageWorkload()
    task = workload._task()
    model, processor = load_model_and_tokenizer(args.model)
    freeze_parameters(model, workload.frozen)
    rng = random.Random("probe-judge/image")
    pairs = []
    for problem in boards(task, "train", 2000, 7):
        wrong, right = boxed_answer(wrong_solution(problem, rng)), rng.choice("AB")
        a, b = (problem.answer, wrong) if right == "A" else (wrong, problem.answer)
        prompt = pairwise_prompt(problem.question, a, b, rng, templates=TINY_TEMPLATES)
        reply = judge_reply(count_solution(problem), f"A: {a} B: {b}", right)
        pairs.append(ImagePair(SupervisedPair(prompt, reply, "pairwise", right, right), problem))
    out = Path(tempfile.mkdtemp(prefix="probe-judge-image-"))
    items = {"reasoning": workload.reasoning_items(out / "data", 50, 0),
             "pointwise": workload.judge_items(out / "data", "pointwise", 50, 0),
             "pairwise": workload.judge_items(out / "data", "pairwise", 200, 0)}
    started = time.perf_counter()
    for block in range(1, args.blocks + 1):
        config = WarmStartConfig(steps=args.steps, learning_rate=args.learning_rate, warmup_steps=5, log_every=args.steps)
        warm_start_vl(model, processor, pairs, config, task.cell, block, progress=None)
        folder = out / f"model-{block}"
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
        result = measure(MeasureJob(str(folder), str(out / f"eval-{block}"), items, "tiny", 40, reflection=False))
        print(f"after {block * args.steps} supervised steps ({block * args.steps * 32} labelled replies, "
              f"{time.perf_counter() - started:.0f}s): pairwise {result['judge_pairwise_accuracy']:.3f} "
              f"(both orders), policy {result['policy_accuracy']:.3f}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a warm-started tiny model folder (the demo's models/warmstart); "
                        "without it, a model is warm-started here on the format below")
    parser.add_argument("--asked", choices=("sum", "tens"), default="sum", help="text task: the answer asked for")
    parser.add_argument("--explicit-carries", action="store_true", help="text task: write every carry, 0 included")
    parser.add_argument("--templates", default="tiny", help="text task: judge templates (tiny, tiny-fixed)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the warm start built here")
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--steps", type=int, default=100, help="supervised steps per block (batch 32)")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--modality", choices=("text", "image"), default="text")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.modality == "image":
        if not args.model:
            parser.error("--modality image needs --model (the image demo's models/warmstart)")
        image_probe(args)
        return 0
    workload = TextWorkload(asked=args.asked, explicit_carries=args.explicit_carries, templates=args.templates)
    task, templates = workload._task(), resolve_templates(args.templates)
    if args.model:
        model, tokenizer = AutoModelForCausalLM.from_pretrained(args.model), AutoTokenizer.from_pretrained(args.model)
    else:
        model, tokenizer = from_scratch(workload, args.seed)
    pairs = labelled_pairs(task, 3000, seed=5, templates=templates)
    print(f"before: {show(held_out_scores(model, tokenizer, task, templates))}", flush=True)
    started = time.perf_counter()
    for block in range(1, args.blocks + 1):
        config = WarmStartConfig(steps=args.steps, learning_rate=args.learning_rate, warmup_steps=5, log_every=args.steps)
        warm_start(model, tokenizer, pairs, config, seed=block, progress=None)
        print(f"after {block * args.steps} supervised steps ({block * args.steps * 32} labelled replies, "
              f"{time.perf_counter() - started:.0f}s): {show(held_out_scores(model, tokenizer, task, templates))}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
