"""Does RL alone teach a `checks` judge of the digit task to follow its marks? (digit note, run 13)

A diagnostic outside TRL, the digit counterpart of `probe_judge_loop.py`. It starts from a
warm start of `experiments/digit_demo.py --judge-style checks` (`DIR/models/warmstart`) and
trains it on pairwise judge prompts only (warm-start prompts of the train split: the right
answer against a plausibly wrong one), `--prompts` per step with 8 replies each sampled at
temperature 1; reward 1 when the verdict names the right letter; advantages normalised within
each group; loss `-sum(advantage x log-prob)` over every reply token / reply tokens (TRL's
`dapo` loss, on-policy), AdamW, gradient norm clipped at 1. `--verdict-only` puts the
policy-gradient term on the verdict token alone. Every `--every` steps it prints the sampled
reward and, on 100 held-out prompts (greedy), the share of right verdicts and of verdicts that
follow the reply's own marks.

    python experiments/probe_digit_verdict_rl.py --model runs/digit-long-s0/models/warmstart --steps 60
"""

from __future__ import annotations

import argparse
import json
import re

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from digit_scaffolding import STYLES  # sibling scripts in experiments/
from probe_marks import TASK

from sparkrl.templates import resolve_templates
from sparkrl.tiny.warmstart import WarmStartData, build_pairs

REPLY = STYLES["checks"][0]  # a pairwise `checks` reply: own answer, candidates and marks, verdict


def prompts(n: int, seed: int) -> list[tuple[str, str]]:
    """(prompt, right letter) of `n` pairwise warm-start prompts (their replies are not used)."""
    data = WarmStartData(policy=0, pointwise=0, pairwise=n, reflection=0)
    return [(p.prompt, p.correct) for p in build_pairs(TASK, data, seed, judge_style="checks",
                                                       templates=resolve_templates("tiny-fixed"))]


def encode(tokenizer, prompt: str) -> list[int]:
    return list(tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                              tokenize=True, return_dict=True)["input_ids"])


def held_out(model, tokenizer, items) -> dict[str, float]:
    right = follows = 0
    for prompt, letter in items:
        ids = torch.tensor([encode(tokenizer, prompt)])
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=64)
        text = tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
        match = REPLY.search(text)
        if not match:
            continue
        *_, mark_a, _, mark_b, verdict = match.groups()
        right += verdict == letter
        follows += verdict == {("+", "-"): "A", ("-", "+"): "B"}.get((mark_a, mark_b))
    return {"right": right / len(items), "follows": follows / len(items)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--prompts", type=int, default=8, help="judge prompts per step (8 replies each)")
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--verdict-only", action="store_true")
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=0.0)
    train, test = prompts(args.steps * args.prompts, args.seed), prompts(100, args.seed + 999)
    boxed = tokenizer.convert_tokens_to_ids("\\boxed{")
    model.eval()
    print(json.dumps({"step": 0, **held_out(model, tokenizer, test)}), flush=True)
    for step in range(1, args.steps + 1):
        batch = train[(step - 1) * args.prompts: step * args.prompts]
        losses, rewards = [], []
        for prompt, letter in batch:
            ids = torch.tensor([encode(tokenizer, prompt)])
            with torch.no_grad():
                out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.0,
                                     max_new_tokens=64, num_return_sequences=8)
            texts = [tokenizer.decode(seq[ids.shape[1]:], skip_special_tokens=True) for seq in out]
            reward = torch.tensor([float(bool(m := re.findall(r"\\boxed\{(\w+)\}", t)) and m[-1] == letter)
                                   for t in texts])
            rewards.append(reward.mean().item())
            if reward.std() == 0:
                continue
            advantage = (reward - reward.mean()) / (reward.std() + 1e-4)
            model.train()
            logits = model(out).logits[:, ids.shape[1] - 1:-1]
            targets = out[:, ids.shape[1]:]
            mask = (targets != tokenizer.pad_token_id).float()
            if args.verdict_only:  # the token right after the last `\boxed{`
                after = torch.zeros_like(mask)
                for row in range(targets.shape[0]):
                    places = (targets[row] == boxed).nonzero().flatten()
                    if len(places) and places[-1] + 1 < targets.shape[1]:
                        after[row, places[-1] + 1] = 1.0
                mask = after
            logp = torch.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            losses.append(-(advantage[:, None] * logp * mask).sum() / mask.sum().clamp(min=1))
            model.eval()
        if losses:
            optimizer.zero_grad()
            torch.stack(losses).mean().backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        if step % args.every == 0:
            print(json.dumps({"step": step, "sampled_reward": round(sum(rewards) / len(rewards), 3),
                              **held_out(model, tokenizer, test)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
