"""Does a warm-started judge already *carry* what its verdict needs, where the verdict is made?

A diagnostic for the demo's judge plateau (docs/demo.md). Warm-start verdicts are random, so
nothing asks the model to bring the comparison it has written out (its notes) to the position
that predicts the verdict. RL can then only turn the comparison into a verdict once some
weight change routes it there, and how long that takes is a matter of luck. This script
measures, for warm starts built here on one task format and several seeds, how readable the
right verdict is from the last hidden state at the verdict position (the `\\boxed{` before the
letter), on the model's own greedy replies to held-out pairwise prompts:

- `probe`: held-out accuracy of a logistic regression on that hidden state (fit on half of
  the items, scored on the other half): whether the information is there at all;
- `separation`: the distance between the two classes' mean hidden states, in units of the
  states' spread. RL's first-order update of the output layer moves the verdict logit by an
  amount proportional to the square of this, so a small value means a long plateau;
- `verdict`: the greedy verdict's accuracy (the warm start's, about 50% by construction).

    python experiments/probe_verdict_features.py --asked tens-parity --judge-style notes --seeds 0 1 2
    python experiments/probe_verdict_features.py --asked tens-parity --judge-style marks --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from sparkrl.demo.workload import TextWorkload
from sparkrl.templates import resolve_templates
from sparkrl.tiny.measure import complete
from sparkrl.tiny.task import judge_examples
from sparkrl.tiny.tokenizer import BOXED


def verdict_states(model, tokenizer, rows) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Last-layer hidden states at the verdict position of the greedy replies, the right
    letters (1 for A), and the greedy verdicts' accuracy. Replies whose last `\\boxed{}` is not
    a letter verdict are skipped (they would also unbalance the alternating labels)."""
    replies = [r[0] for r in complete(model, tokenizer, [row.question for row in rows], max_new_tokens=48)]
    states, labels, right = [], [], 0
    for row, reply in zip(rows, replies):
        cut = reply.rfind(BOXED)
        if cut < 0 or reply[cut + len(BOXED):cut + len(BOXED) + 2] not in ("A}", "B}"):
            continue
        right += reply.rstrip().endswith(f"{BOXED}{row.answer}}}")
        chat = tokenizer.apply_chat_template([{"role": "user", "content": row.question}], add_generation_prompt=True,
                                             tokenize=True, return_dict=True)["input_ids"]
        ids = list(chat) + tokenizer(reply[: cut + len(BOXED)], add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            out = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
        states.append(out.hidden_states[-1][0, -1])
        labels.append(1.0 if row.answer == "A" else 0.0)
    return torch.stack(states), torch.tensor(labels), right / len(rows)


def separation(states: torch.Tensor, labels: torch.Tensor) -> float:
    """|mean(h | A right) - mean(h | B right)| / root-mean-square spread of h around its class mean."""
    a, b = states[labels == 1], states[labels == 0]
    spread = torch.cat([a - a.mean(0), b - b.mean(0)]).pow(2).sum(1).mean().sqrt()
    return float((a.mean(0) - b.mean(0)).norm() / spread)


def probe_accuracy(states: torch.Tensor, labels: torch.Tensor, l2: float = 1e-2) -> float:
    """Logistic regression fit on items 0, 1, 4, 5, ..., accuracy on items 2, 3, 6, 7, ...
    (held-out labels alternate A, B, so each half keeps both)."""
    mean, std = states.mean(0), states.std(0) + 1e-6
    x = (states - mean) / std
    index = torch.arange(len(labels))
    fit, test = (index // 2) % 2 == 0, (index // 2) % 2 == 1
    w = torch.zeros(x.shape[1] + 1, requires_grad=True)
    optimizer = torch.optim.LBFGS([w], max_iter=200)

    def loss():
        optimizer.zero_grad()
        logits = x[fit] @ w[:-1] + w[-1]
        value = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels[fit]) + l2 * w[:-1].pow(2).sum()
        value.backward()
        return value

    optimizer.step(loss)
    with torch.no_grad():
        return float(((x[test] @ w[:-1] + w[-1] > 0).float() == labels[test]).float().mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--asked", choices=("sum", "tens", "tens-parity"), default="tens-parity")
    parser.add_argument("--judge-style", choices=("compare", "notes", "marks"), default="notes")
    parser.add_argument("--templates", default="tiny-fixed")
    parser.add_argument("--size", choices=("nano", "micro", "small"), default="micro")
    parser.add_argument("--paired-verdicts", action="store_true")
    parser.add_argument("--items", type=int, default=400, help="held-out pairwise prompts (half fit, half score)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    workload = TextWorkload(size=args.size, asked=args.asked, explicit_carries=True, templates=args.templates,
                            judge_style=args.judge_style, paired_verdicts=args.paired_verdicts)
    rows = judge_examples(workload._task(), "test", args.items, 0, "pairwise", resolve_templates(args.templates))
    for seed in args.seeds:
        folder = Path(tempfile.mkdtemp(prefix=f"probe-verdict-{args.judge_style}-{seed}-"))
        workload.warm_start(folder, seed, progress=lambda line: None)
        model, tokenizer = AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
        model.eval()
        states, labels, verdict = verdict_states(model, tokenizer, rows)
        print(json.dumps({"seed": seed, "style": args.judge_style, "replies with a verdict": len(labels),
                          "verdict": round(verdict, 3), "probe": round(probe_accuracy(states, labels), 3),
                          "separation": round(separation(states, labels), 3), "model": str(folder)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
