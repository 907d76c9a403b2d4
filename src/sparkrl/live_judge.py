"""The model being trained as its own judge: self-judged rewards inside a training round.

`LiveJudge` is the `sparkrl.self_reward.Judge` of a training run. It asks the trainer's model,
on its current weights, through the trainer's own generation path:
- in-process generation (no vLLM): the live model under TRL's `unwrap_model_for_generation`
  (DeepSpeed ZeRO-3 gathering, FSDP, PEFT, gradient checkpointing off), as TRL generates
  rollouts; no copy and no reload of the weights;
- vLLM (`grpo.use_vllm`): TRL's own `VLLMGeneration.generate` of the round (colocate: the
  trainer's engine, whose weights TRL synced for this round's rollouts; server: TRL's client),
  with the judge's sampling settings in place of the rollouts' for the duration of the call.
A verdict's probability is read at the verdict token of a greedy verdict (top log-probabilities,
`sparkrl.inference.strategies.verdict_probability`); where none can be read, `samples` sampled
verdicts are drawn and the share naming the first option counts. Prompts are split evenly over
the processes and the answers gathered, so every process holds every probability; both passes
(greedy, then sampled) are taken by every process together, which TRL's vLLM server mode needs.

`SelfRewardHook` is the reward router's self-judging hook (`RewardRouter.self_judge`): it
gathers the round's rows from every process, scores the `open` groups (and, on monitored
rounds, the labelled policy groups, for their agreement with the verifier) in one judge call,
applies the `min_agreement` gate, and keeps the round's metrics for the trainer's logs.
Judge sampling is seeded per round inside a forked RNG (in-process), so the training RNG and
with it the rollouts are untouched; vLLM samples are not seeded (TRL's rollouts are not either).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sparkrl.diagnostics import PhaseClock
from sparkrl.inference.backends import Generation
from sparkrl.inference.strategies import VERDICT_TOP_LOGPROBS, verdict_probability
from sparkrl.rewards import RouterCall, SelfJudgedScore
from sparkrl.rows import TASK_OPEN, TASK_POLICY, Example
from sparkrl.self_reward import (
    GroupScores,
    JudgeOutput,
    JudgePrompt,
    RolloutGroup,
    SelfRewardConfig,
    SelfRewardState,
    candidate,
    score_groups,
)
from sparkrl.templates import TemplateSet
from sparkrl.verification import extract_final_answer, verify_label

# A judge prompt as the chat messages TRL tokenizes (the trainer renders it like a recycled item).
Render = Callable[[JudgePrompt], list[dict[str, Any]]]


class LiveJudge:
    """Verdict probabilities from the trainer's live model (a `sparkrl.self_reward.Judge`)."""

    def __init__(self, trainer: Any, config: SelfRewardConfig, render: Render, batch_size: int) -> None:
        self.trainer = trainer
        self.config = config
        self.render = render
        self.batch_size = max(1, batch_size)
        self.max_new_tokens = config.max_new_tokens or trainer.args.max_completion_length
        self.seed = 0  # set per round by SelfRewardHook

    def __call__(self, prompts: Sequence[JudgePrompt]) -> JudgeOutput:
        greedy = self._everywhere(prompts, greedy=True)
        probabilities = [p for p, _ in greedy]
        tokens = sum(n for _, n in greedy)
        missing = [k for k, p in enumerate(probabilities) if p is None]
        if missing:
            sampled = self._everywhere([prompts[k] for k in missing], greedy=False)
            for k, (p, n) in zip(missing, sampled):
                probabilities[k] = p
                tokens += n
        return JudgeOutput(tuple(float(p) for p in probabilities), tokens)

    def _everywhere(self, prompts: Sequence[JudgePrompt], greedy: bool) -> list[tuple[float | None, int]]:
        """Each process judges an equal share (the last padded with repeats, whose answers are
        dropped); every process gets every answer."""
        from accelerate.utils import gather_object

        accelerator = self.trainer.accelerator
        per = math.ceil(len(prompts) / accelerator.num_processes)
        start = accelerator.process_index * per
        mine = list(range(start, min(start + per, len(prompts))))
        padded = [prompts[k] for k in mine] + [prompts[0]] * (per - len(mine))
        answers = self._judge(padded, greedy) if per else []
        found = gather_object([(k, answer) for k, answer in zip(mine, answers)])
        return [answer for _, answer in sorted(found)]

    def _judge(self, prompts: Sequence[JudgePrompt], greedy: bool) -> list[tuple[float | None, int]]:
        """(P(options[0]) or None, tokens generated) per prompt."""
        ids = self.trainer._tokenize_prompts([self.render(p) for p in prompts])[0]
        copies = 1 if greedy else self.config.samples
        generations = self._generate(list(ids), copies, greedy)
        out = []
        for prompt, found in zip(prompts, generations, strict=True):
            if greedy:
                probability = verdict_probability(found[0][0], prompt.options)
            else:
                probability = sum(verify_label(g.text, prompt.options[0]).correct for g, _ in found) / len(found)
            out.append((probability, sum(n for _, n in found)))
        return out

    def _generate(self, ids: list[list[int]], copies: int, greedy: bool) -> list[list[tuple[Generation, int]]]:
        if self.trainer.use_vllm:
            return self._generate_vllm(ids, copies, greedy)
        return self._generate_in_process(ids, copies, greedy)

    def _generate_in_process(
        self, ids: list[list[int]], copies: int, greedy: bool
    ) -> list[list[tuple[Generation, int]]]:
        import torch
        from transformers import GenerationConfig
        from trl.models import unwrap_model_for_generation

        trainer = self.trainer
        tokenizer = trainer.processing_class
        settings = {
            "max_new_tokens": self.max_new_tokens, "do_sample": not greedy, "num_return_sequences": copies,
            "eos_token_id": trainer.eos_token_ids, "pad_token_id": tokenizer.pad_token_id, "top_k": 0, "top_p": 1.0,
            **({} if greedy else {"temperature": self.config.temperature}),
        }
        device = trainer.accelerator.device
        per_batch = max(1, self.batch_size // copies)
        stops = {*trainer.eos_token_ids, tokenizer.pad_token_id}
        out: list[list[tuple[Generation, int]]] = []
        with (
            torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []),
            unwrap_model_for_generation(
                trainer.model_wrapped, trainer.accelerator,
                gather_deepspeed3_params=trainer.args.ds3_gather_for_generation, generation_kwargs=settings,
                gradient_checkpointing_kwargs=trainer.args.gradient_checkpointing_kwargs,
            ) as model,
            torch.no_grad(),
            trainer._dist.summon_full_params(trainer.model_wrapped, recurse=False),
        ):
            for batch, begin in enumerate(range(0, len(ids), per_batch)):
                torch.manual_seed(self.seed + batch)
                chunk = ids[begin : begin + per_batch]
                width = max(map(len, chunk))
                padded = [[tokenizer.pad_token_id] * (width - len(r)) + r for r in chunk]
                input_ids = torch.tensor(padded, device=device)
                mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in chunk], device=device)
                result = model.generate(
                    input_ids=input_ids, attention_mask=mask, return_dict_in_generate=True, output_logits=greedy,
                    generation_config=GenerationConfig(**settings, disable_compile=True),
                )
                top = None
                if greedy:
                    top = torch.stack(result.logits, dim=1).float().log_softmax(-1).topk(VERDICT_TOP_LOGPROBS, dim=-1)
                rows = [_hf_generation(tokenizer, row, new, top, stops)
                        for row, new in enumerate(result.sequences[:, width:].tolist())]
                out.extend(rows[i : i + copies] for i in range(0, len(rows), copies))
        return out

    def _generate_vllm(self, ids: list[list[int]], copies: int, greedy: bool) -> list[list[tuple[Generation, int]]]:
        settings = {
            "temperature": 0.0 if greedy else self.config.temperature, "top_p": 1.0, "top_k": 0, "min_p": 0.0,
            "repetition_penalty": 1.0, "max_completion_length": self.max_new_tokens,
            "logprobs": VERDICT_TOP_LOGPROBS if greedy else 0, "generation_kwargs": {},
            "structured_outputs_regex": None,
        }
        rows = [prompt for prompt in ids for _ in range(copies)]
        engine = self.trainer.vllm_generation
        with _swapped(engine, settings):
            _, completions, logprobs, token_ids = engine.generate(prompts=rows, images=None, num_generations=copies)
        tokenizer = self.trainer.processing_class
        found = [
            _vllm_generation(tokenizer, completion, logprobs[i] if greedy and logprobs else None,
                             token_ids[i] if greedy and token_ids else None)
            for i, completion in enumerate(completions)
        ]
        return [found[i : i + copies] for i in range(0, len(found), copies)]


@contextlib.contextmanager
def _swapped(target: Any, values: dict[str, Any]) -> Iterator[None]:
    """`target`'s attributes set to `values` inside the block, restored after it."""
    saved = {name: getattr(target, name) for name in values}
    try:
        for name, value in values.items():
            setattr(target, name, value)
        yield
    finally:
        for name, value in saved.items():
            setattr(target, name, value)


def _hf_generation(tokenizer: Any, row: int, ids: list[int], top: Any, stops: set[int]) -> tuple[Generation, int]:
    """A generated row cut at its first stop token, with its top log-probabilities; and its
    generated tokens (the stop token included, as TRL counts completions)."""
    length = next((i for i, t in enumerate(ids) if t in stops), len(ids))
    text = tokenizer.decode(ids[:length], skip_special_tokens=True)
    used = min(len(ids), length + 1)
    if top is None:
        return Generation(text), used
    values, indices = top.values[row, :length].tolist(), top.indices[row, :length].tolist()
    tokens = tuple(tokenizer.decode([t]) for t in ids[:length])
    alternatives = tuple({tokenizer.decode([i]): v for i, v in zip(step_ids, step_values)}
                         for step_ids, step_values in zip(indices, values))
    return Generation(text, tokens, alternatives), used


def _vllm_generation(
    tokenizer: Any, ids: Sequence[int], logprobs: Sequence[Sequence[float | None]] | None,
    token_ids: Sequence[Sequence[int]] | None,
) -> tuple[Generation, int]:
    """A vLLM completion (TRL's lists: ids, and per token the top log-probabilities with their
    ids, best first; None where vLLM gave none) as a `Generation`."""
    text = tokenizer.decode(list(ids), skip_special_tokens=True)
    if logprobs is None or token_ids is None:
        return Generation(text), len(ids)
    tokens = tuple(tokenizer.decode([t]) for t in ids)
    alternatives = tuple(
        {tokenizer.decode([t]): v for t, v in zip(step_ids, step_values) if v is not None}
        for step_ids, step_values in zip(token_ids, logprobs)
    )
    return Generation(text, tokens, alternatives), len(ids)


class SelfRewardHook:
    """Scores a round's `open` rows (and monitors the judge on its labelled rows); the reward
    router's `self_judge`. `begin_round` is called by the trainer before each round."""

    def __init__(
        self, trainer: Any, config: SelfRewardConfig, judge: LiveJudge, templates: TemplateSet, clock: PhaseClock
    ) -> None:
        self.trainer = trainer
        self.config = config
        self.judge = judge
        self.templates = templates
        self.clock = clock
        self.state = SelfRewardState.initial(config)
        self.round_index = 0
        self.seed = 0
        self.since_log: list[dict[str, float]] = []  # per round since the last log line

    def begin_round(self, round_index: int, seed: int) -> None:
        self.round_index, self.seed = round_index, seed
        self.judge.seed = seed

    def __call__(self, call: RouterCall) -> list[SelfJudgedScore]:
        """The scores of this process's `open` rows. Every process gathers the whole round, so
        groups split over processes are judged whole, and all take the same decisions."""
        if not self.trainer.model.training:
            if TASK_OPEN in call.tasks:
                raise RuntimeError("unlabeled rows cannot be evaluated: evaluation data needs answers")
            return []
        started = time.perf_counter()
        from accelerate.utils import gather_object

        scores = [None if v is None else v.score for v in call.verdicts]
        rows = gather_object(list(zip(call.tasks, call.completions, call.examples, scores, call.completion_tokens)))
        size = self.trainer.num_generations
        groups = [rows[i : i + size] for i in range(0, len(rows), size)]
        open_groups = [g for g in groups if g[0][0] == TASK_OPEN]
        probes = [g for g in groups if g[0][0] == TASK_POLICY]
        record: dict[str, float] = {}
        rewards: list[tuple[float, ...]] = []
        calls, tokens = 0, 0
        if self.state.next_round(self.config, bool(probes)):
            judged = self._score(probes + (open_groups if self.state.active else []))
            calls, tokens = judged.judge_calls, judged.generated_tokens
            probe = [(judged.rewards[k], tuple(row[3] for row in g)) for k, g in enumerate(probes)]
            entry = self.state.record(self.config, self.round_index, probe)
            record["spark/self_reward_agreement"] = entry["agreement"]
            if entry["spearman"] is not None:
                record["spark/self_reward_spearman"] = entry["spearman"]
            rewards = list(judged.rewards[len(probes) :])
        if self.state.active and open_groups and not rewards:
            judged = self._score(open_groups)
            rewards, calls, tokens = list(judged.rewards), calls + judged.judge_calls, tokens + judged.generated_tokens
        verdicts = self._verdicts(groups, rewards)
        if rewards:
            record["spark/self_reward/mean"] = sum(map(sum, rewards)) / sum(map(len, rewards))
        policy_tokens = sum(row[4] for row in rows)
        record |= {"spark/self_reward_active": float(self.state.active), "spark/self_reward/judge_calls": float(calls),
                   "spark/self_reward/judge_tokens_per_policy_token": tokens / policy_tokens if policy_tokens else 0.0}
        self.since_log.append(record)
        local = len(call.tasks)
        mine = verdicts[self.trainer.accelerator.process_index * local :][:local]
        self.clock.add("self_reward", time.perf_counter() - started)
        return [v for v in mine if v is not None]

    def _score(self, groups: Sequence[Sequence[tuple[Any, ...]]]) -> GroupScores:
        rollouts = []
        for group in groups:
            example = Example.from_dict(json.loads(group[0][2]))
            rollouts.append(RolloutGroup(example.question, tuple(row[1] for row in group), example.images))
        return score_groups(rollouts, self.config, self.judge, self.templates, self.seed)

    def _verdicts(
        self, groups: Sequence[Sequence[tuple[Any, ...]]], rewards: Sequence[Sequence[float]]
    ) -> list[SelfJudgedScore | None]:
        """Per global row, the verdict of an `open` row (None for a labelled one): its
        self-judged reward, or 0 while the gate is shut (`rewards` then empty)."""
        scored = iter(rewards)
        verdicts: list[SelfJudgedScore | None] = []
        for group in groups:
            if group[0][0] != TASK_OPEN:
                verdicts += [None] * len(group)
                continue
            values = next(scored, None)
            for k, (_, text, *_rest) in enumerate(group):
                answer = extract_final_answer(text)
                shown = answer if self.config.mode == "majority" else candidate(text, self.config.show)
                if values is None:
                    verdicts.append(SelfJudgedScore(0.0, answer, "self-reward-inactive"))
                else:
                    reason = "no-answer" if shown is None else f"self-judged-{self.config.mode}"
                    verdicts.append(SelfJudgedScore(values[k], answer, reason))
        return verdicts
