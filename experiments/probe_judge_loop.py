"""How fast does the one-bit `marks` judge learn to follow its marks: with labels, by RL, by RL
with a KL anchor? A minimal training loop of our own, outside TRL.

A diagnostic, not part of the demo. It starts from a demo warm start of the one-bit format
(`DIR/models/warmstart` of `sparkrl demo`) and trains it on pairwise judge prompts from the
train split, 16 per step, with AdamW (no weight decay, gradient norm clipped at 1), in one of
three modes:

- `supervised`: the reply is the right worked solution, the right marks and the right verdict
  (labels the demo's warm start never sees); the loss is the usual cross-entropy on the reply;
- `rl`: 8 replies sampled per prompt (temperature `--temperature`), reward 1 when the last
  `\\boxed{}` names the right letter, advantages normalised within each group of 8, loss
  `-sum(advantage x log-prob)` over every reply token / reply tokens (TRL's `dapo` loss when
  on-policy), plus `--beta` x the k3 KL estimate to the warm start on every reply token;
- `rl-verdict`: the same, with the policy-gradient term on the verdict token only.

Every `--every` steps it prints, on 200 held-out pairwise items (greedy, one order): the share
of right verdicts, the share whose verdict follows the judge's own marks (among replies that
mark exactly one candidate `+`), whose own worked answer is right, and whose two marks agree
with their own answer (`experiments/judge_scaffolding.py` counts the same on demo folders).

    python experiments/probe_judge_loop.py --model runs/demo-seed1/models/warmstart --mode rl --beta 0.3 --steps 50
"""

from __future__ import annotations

import argparse
import re
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from judge_scaffolding import REPLY  # a sibling script in bench/: the one-bit marks reply
from sparkrl.demo.workload import text_workload
from sparkrl.templates import resolve_templates
from sparkrl.tiny.measure import complete, is_correct
from sparkrl.tiny.task import Problem, correct_solution, judge_examples
from sparkrl.tiny.warmstart import SupervisedPair, collate, encode_pair, marked_reply
from sparkrl.verification import extract_final_answer

PROMPTS_PER_STEP, SAMPLES = 16, 8


def held_out(model, tokenizer, rows) -> str:
    model.eval()
    replies = [r[0] for r in complete(model, tokenizer, [row.question for row in rows], max_new_tokens=48)]
    right = follows = one_marked = own = marks = 0
    for row, reply in zip(rows, replies):
        right += is_correct(reply, row.answer)
        found = REPLY.search(reply)
        if not found:
            continue
        answer, a, mark_a, b, mark_b, verdict = found.groups()
        own += answer == row.source["truth"]
        marks += (mark_a == "+") == (a == answer) and (mark_b == "+") == (b == answer)
        if mark_a != mark_b:
            one_marked += 1
            follows += verdict == ("A" if mark_a == "+" else "B")
    n = len(rows)
    return (f"right {right / n:.3f}, follows marks {follows / max(one_marked, 1):.3f}, "
            f"own answer {own / n:.3f}, marks {marks / n:.3f}")


def labelled(rows, task) -> list[SupervisedPair]:
    """The right reply to each prompt: right solution, right marks, right verdict."""
    pairs = []
    for row in rows:
        a, b = re.search(r"A: (\d) B: (\d)", row.question).groups()
        problem = Problem(tuple(row.source["operands"]), task.asked, task.explicit_carries)
        reply = marked_reply(correct_solution(problem), [("A", a), ("B", b)], row.answer)
        pairs.append(SupervisedPair(row.question, reply, "pairwise", row.answer, row.answer))
    return pairs


def sampled(model, tokenizer, rows, temperature: float) -> tuple[list[SupervisedPair], torch.Tensor, float]:
    """8 sampled replies per prompt, their group-normalised advantages and the mean reward."""
    model.eval()
    with torch.no_grad():
        replies = complete(model, tokenizer, [row.question for row in rows], samples=SAMPLES,
                           temperature=temperature, max_new_tokens=48)
    pairs, advantages, rewards = [], [], []
    for row, group in zip(rows, replies):
        reward = torch.tensor([float(is_correct(reply, row.answer)) for reply in group])
        advantages.append((reward - reward.mean()) / (reward.std() + 1e-4))
        rewards += reward.tolist()
        pairs += [SupervisedPair(row.question, reply.strip(), "pairwise", extract_final_answer(reply) or "", row.answer)
                  for reply in group]
    return pairs, torch.cat(advantages), sum(rewards) / len(rewards)


def token_log_probs(model, batch) -> torch.Tensor:
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    labels = batch["labels"][:, 1:]
    return torch.log_softmax(logits.float(), -1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)


def verdict_positions(encoded, box_id: int, shape) -> torch.Tensor:
    """A mask on the label positions that predict each reply's verdict (the token after its last box)."""
    mask = torch.zeros(shape, dtype=torch.bool)
    for row, (ids, start) in enumerate(encoded):
        boxes = [i for i in range(start, len(ids) - 1) if ids[i] == box_id]
        if boxes:
            mask[row, boxes[-1]] = True  # label index i predicts token i + 1
    return mask


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a one-bit demo warm start (DIR/models/warmstart)")
    parser.add_argument("--mode", choices=("supervised", "rl", "rl-verdict"), default="rl")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--beta", type=float, default=0.0, help="KL coefficient to the warm start (rl modes)")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--every", type=int, default=10, help="held-out measure every this many steps")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    workload = text_workload("one-bit")
    task, templates = workload._task(), resolve_templates(workload.templates)
    model, tokenizer = AutoModelForCausalLM.from_pretrained(args.model), AutoTokenizer.from_pretrained(args.model)
    reference = AutoModelForCausalLM.from_pretrained(args.model).eval() if args.beta else None
    box_id = tokenizer.convert_tokens_to_ids(tokenizer.tokenize("\\boxed{")[-1])
    train = judge_examples(task, "train", PROMPTS_PER_STEP * args.steps, 0, "pairwise", templates)
    test = judge_examples(task, "test", 200, 0, "pairwise", templates)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=0.0)
    print(f"before: {held_out(model, tokenizer, test)}", flush=True)
    started, rewards = time.perf_counter(), []
    for step in range(1, args.steps + 1):
        rows = train[(step - 1) * PROMPTS_PER_STEP : step * PROMPTS_PER_STEP]
        if args.mode == "supervised":
            pairs, advantages = labelled(rows, task), None
        else:
            pairs, advantages, reward = sampled(model, tokenizer, rows, args.temperature)
            rewards.append(reward)
        encoded = [encode_pair(tokenizer, pair) for pair in pairs]
        batch = collate(encoded, tokenizer.pad_token_id)
        model.train()
        log_probs = token_log_probs(model, batch)
        reply = batch["labels"][:, 1:] != -100
        if advantages is None:
            loss = -(log_probs * reply).sum() / reply.sum()
        else:
            scored = reply & verdict_positions(encoded, box_id, reply.shape) if args.mode == "rl-verdict" else reply
            loss = -(advantages.unsqueeze(1) * log_probs * scored).sum() / scored.sum()
            if reference is not None:
                with torch.no_grad():
                    reference_log_probs = token_log_probs(reference, batch)
                gap = reference_log_probs - log_probs
                loss = loss + args.beta * ((gap.exp() - gap - 1) * reply).sum() / reply.sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step % args.every == 0 or step == args.steps:
            trained = f", training reward {sum(rewards[-args.every:]) / len(rewards[-args.every:]):.2f}" if rewards else ""
            print(f"after {step} steps ({time.perf_counter() - started:.0f}s{trained}): {held_out(model, tokenizer, test)}",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
