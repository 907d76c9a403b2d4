"""SPARK training: TRL's GRPOTrainer plus a pool of recycled judge and reflection items.

`SparkGRPOTrainer` touches TRL at six documented points and copies none of its methods:
1. `_generate_and_score_completions` (per generation round): before calling TRL, the round's
   prompt slots are filled by the schedule (sparkrl.schedule) with dataset prompts and/or
   recycled items, each repeated `num_generations` times so GRPO's groups hold; after TRL has
   generated and scored, the round's rollouts are gathered from all processes, grouped, and
   recycled (sparkrl.recycling) into the pool. Every process gathers the same records and
   recycles them with the same seed, so all ranks hold identical pools and pick identical items.
   Recycled prompts are held to a token budget (`recycled_prompt_budget`: the configured one,
   lowered to what the model's context leaves), since TRL itself never limits or truncates a
   prompt. The round's advantages show which groups carried no learning signal
   (`_watch_signal`: logged per kind, and a warning when most of a kind's groups had none).
2. `_save_checkpoint` / `_load_optimizer_and_scheduler` (the hooks TRL itself uses for its
   extra state): the pool, the deferred dataset prompts and the round counters are saved in
   each checkpoint folder and restored on resume.
3. `log`: SPARK's round counters, the latest recycling statistics, the no-signal shares and the
   time per phase (see 5) join TRL's logs.
4. `_tokenize_prompts`, for vision-language runs only: TRL marks a text-only prompt's images
   as None, and its own forward pass later hands that None to the processor, which rejects
   it; mixed batches of text and image rows therefore need [] there instead. vLLM generation
   (`_generate_single_turn`) reads None as "no image", so it gets None back for those rows.
5. `_generate` and `_calculate_rewards` (the generation and scoring that TRL itself profiles,
   but reports only to wandb, MLflow or Trackio) are timed, as are whole optimizer steps (the
   `on_step_begin` / `on_step_end` callbacks), so that the logs say where a round's time goes.
6. Self-judged rewards (`spark.self_reward`, sparkrl.live_judge) run inside TRL's reward call,
   so they override nothing, but they use the trainer's generation machinery: its
   `_tokenize_prompts`, then either TRL's `VLLMGeneration.generate` (`vllm_generation`, with
   its sampling attributes swapped for the call) or `unwrap_model_for_generation` on
   `model_wrapped` (with `eos_token_ids` and the FSDP helper `_dist`).
Images: rows carry image *paths* (inside the `example` column), never pixels, because the
round state that holds them (pool, deferred prompts) is gathered across processes and saved
as JSON in checkpoints. Right before each call into TRL, `with_images` opens the files and
adds the `images` column (PIL images; [] for text-only rows) that TRL's vision-language path
reads; a file that vanished or broke since loading is an error naming the row it belongs to.
Rewards come from one `RewardRouter` passed as TRL's first reward function; per-task metrics
are reported through TRL's `log_metric` hook. Unlabeled rows (task `open`: rows of the train
file without an answer, and `data.unlabeled` prompts in `spark.unlabeled_share` of each round's
dataset slots) are scored by the router's self-judging hook (`sparkrl.live_judge`), the model
judging its own rollouts through the trainer's generation path; they are never recycled, since
they have no 0/1 correctness. Its state (gate, agreement history) is checkpointed with the
rest. Extra reward functions (`rewards.extra`) follow the router, and TRL adds their weighted
values for the advantage, but the recycling reads only the router's verdicts of the round
(`router.last_rows`, emptied before TRL's call and checked after it, so a round that skipped
the router cannot recycle the previous round's verdicts).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accelerate.utils import gather_object
from transformers import ProcessorMixin, TrainerCallback
from trl import GRPOTrainer

from sparkrl.config import PromptConfig, SparkConfig
from sparkrl.errors import ConfigError, ImageError
from sparkrl.diagnostics import (
    PhaseClock,
    SignalWatch,
    mean_per_key,
    no_signal_groups,
    no_signal_warning,
    prompt_kind,
    round_times,
)
from sparkrl.live_judge import LiveJudge, SelfRewardHook
from sparkrl.recycling import Group, RecyclingConfig, Rollout, recycle
from sparkrl.rewards import RewardFunction, RewardRouter, ScoredRow
from sparkrl.rows import RECYCLED_TASKS, TASK_OPEN, TASK_POINTWISE, TASK_POLICY, Example
from sparkrl.schedule import (
    RoundPlan,
    RoundState,
    fill_round,
    optimizer_steps_per_round,
    plan_round,
    unlabeled_indices,
    unlabeled_slots,
)
from sparkrl.self_reward import SelfRewardState

if TYPE_CHECKING:
    from PIL import Image

STATE_FILE = "sparkrl_state.json"
ROUND_LOG_DIR = "spark_rounds"

logger = logging.getLogger(__name__)


def example_row(example: Example, prompt: PromptConfig) -> dict[str, Any]:
    """The dataset row TRL trains on: a chat prompt plus the columns the reward router reads.

    Policy questions get the answer-format suffix; recycled items carry their own instructions.
    Every row has the same keys, because TRL builds reward columns from the first row's keys.
    """
    text = example.question
    if example.task == TASK_POLICY and prompt.suffix:
        text = f"{text}\n\n{prompt.suffix}"
    system = example.system if example.system is not None else prompt.system
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
    return {
        "prompt": messages,
        "question": example.question,
        "answer": example.answer,
        "task": example.task,
        "example": json.dumps(example.to_dict(), sort_keys=True),
    }


def describe_row(example: Example) -> str:
    """Where a row comes from, for error messages: its dataset file and row, or the recycled
    item's task and the dataset row of the question it was built from."""
    source = example.source
    origin = source.get("group_source", source)
    where = f"{origin.get('file', 'unknown file')}, row {origin.get('row', '?')}"
    return f"recycled {example.task} item from {where}" if example.task in RECYCLED_TASKS else where


def open_image(path: str, example: Example) -> Image.Image:
    """The image at `path` as RGB, fully read (the file is closed again)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError) as err:  # missing, unreadable or not an image (PIL raises OSError subclasses)
        raise ImageError(f"{describe_row(example)}, field images: cannot open image {path}: {err}") from None


def with_images(rows: Sequence[Mapping[str, Any]], vision: bool) -> list[dict[str, Any]]:
    """Rows as TRL reads them: for a vision-language model each row gains an `images` column of
    PIL images opened from its example's paths ([] for a text-only row; every row gets the key,
    because TRL takes its columns from the first row). A text-only model gets the rows
    unchanged, and an error if one of them has images."""
    examples = [Example.from_dict(json.loads(row["example"])) for row in rows]
    if not vision:
        for example in examples:
            if example.images:
                raise ImageError(
                    f"{describe_row(example)}: the row has images but the model was loaded with a "
                    "tokenizer, not a processor; use a vision-language model"
                )
        return [dict(row) for row in rows]
    return [{**row, "images": [open_image(p, e) for p in e.images]} for row, e in zip(rows, examples, strict=True)]


def unique_prompts(rows: Sequence[Mapping[str, Any]], group_size: int) -> list[Mapping[str, Any]]:
    """One row per group from TRL's repeated rows (each prompt appears `group_size` times in a row)."""
    if len(rows) % group_size:
        raise RuntimeError(f"{len(rows)} rows do not form groups of {group_size}")
    groups = [rows[i : i + group_size] for i in range(0, len(rows), group_size)]
    for group in groups:
        if any(row["example"] != group[0]["example"] for row in group):
            raise RuntimeError("a generation group mixes different prompts; GRPO's grouping would break")
    return [group[0] for group in groups]


def rollout_groups(
    rows: Sequence[Mapping[str, Any]],
    scored: Sequence[ScoredRow],
    group_size: int,
    recycle_recycled: bool,
) -> list[Group]:
    """Turn a round's global rows and their verdicts into recycling groups. Unlabeled (`open`)
    groups are left out: a self-judged score is no 0/1 correctness to build judge labels from."""
    if len(rows) != len(scored):
        raise RuntimeError(f"{len(rows)} rows but {len(scored)} scored completions")
    groups = []
    for start in range(0, len(rows), group_size):
        example = Example.from_dict(json.loads(rows[start]["example"]))
        if example.task == TASK_OPEN or (example.task != TASK_POLICY and not recycle_recycled):
            continue
        members = scored[start : start + group_size]
        rollouts = tuple(Rollout(text=s.completion, reward=s.verdict.score, answer=s.verdict.extracted) for s in members)
        groups.append(
            Group(
                question=example.question,
                answer=example.answer,
                rollouts=rollouts,
                images=example.images,
                source={**example.source, "task": example.task},
            )
        )
    return groups


def round_seed(seed: int, round_index: int) -> int:
    """A distinct, reproducible recycling seed per round, identical on every process."""
    return (seed * 1_000_003 + round_index) % (2**63)


def text_token_counter(processing_class: Any) -> Callable[[str], int]:
    """Tokens of a prompt's text as the model's tokenizer splits it, without special tokens (the
    chat template's are counted once, by `chat_overhead`)."""
    tokenizer = getattr(processing_class, "tokenizer", processing_class)

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return count


def chat_overhead(processing_class: Any, system: str | None, chat_template: str | None = None) -> int:
    """Tokens the chat template adds around a user text: system prompt, role markers, the
    generation prompt (as TRL renders prompts: `add_generation_prompt=True`)."""
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": ""}]
    rendered = processing_class.apply_chat_template(
        messages, chat_template=chat_template, add_generation_prompt=True, tokenize=True, return_dict=True
    )
    ids = rendered["input_ids"]
    return len(ids[0] if ids and isinstance(ids[0], list) else ids)  # processors return a batch of one


def prompt_token_limit(args: Any, model_config: Any, overhead: int) -> tuple[int, int] | None:
    """(context, the most tokens of a prompt's text that still leave room for the chat template
    and the longest completion in it), or None when the context is unknown. The context is
    vLLM's `vllm_max_model_length` when generation uses vLLM and it is set, else the language
    model's `max_position_embeddings`. Image tokens are not counted."""
    if getattr(args, "use_vllm", False) and getattr(args, "vllm_max_model_length", None):
        context = int(args.vllm_max_model_length)
    else:
        text_config = model_config.get_text_config() if hasattr(model_config, "get_text_config") else model_config
        context = getattr(text_config, "max_position_embeddings", None)
        if not isinstance(context, int) or context < 1:
            return None
    limit = context - (args.max_completion_length or 0) - overhead
    if limit < 1:
        raise ConfigError(
            f"grpo.max_completion_length ({args.max_completion_length}) and the chat template ({overhead} "
            f"tokens) leave no room for a prompt in the model's context of {context} tokens"
        )
    return context, limit


def recycled_prompt_budget(recycling: RecyclingConfig, limit: int | None) -> RecyclingConfig:
    """The recycling configuration with its prompt budget lowered to `limit`: a recycled prompt
    that would not fit the context is shortened or dropped by the budget's rule (TRL would
    neither cut nor refuse it)."""
    budgets = [b for b in (recycling.max_prompt_tokens, limit) if b is not None]
    return dataclasses.replace(recycling, max_prompt_tokens=min(budgets) if budgets else None)


class SparkGRPOTrainer(GRPOTrainer):
    """GRPO whose rollouts are recycled into judge and reflection items for later rounds."""

    def __init__(
        self,
        *args: Any,
        spark: SparkConfig,
        prompt: PromptConfig,
        router: RewardRouter,
        extra_rewards: Sequence[RewardFunction] = (),
        unlabeled: Sequence[dict[str, Any]] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, reward_funcs=[router, *extra_rewards], **kwargs)
        self.spark = spark
        self.prompt_config = prompt
        self.router = router
        self.unlabeled = list(unlabeled)  # rows of data.unlabeled (example_row dicts)
        self.count_tokens = text_token_counter(self.processing_class)
        self.recycling = self._budgeted(RecyclingConfig(**spark.recycling))
        self.round_state = RoundState()
        self.last_recycling_stats: dict[str, Any] = {}
        self.signal_since_log: list[dict[str, float]] = []  # per round generated since the last log line
        self.signal_watch = SignalWatch()
        self.clock = PhaseClock()
        self.self_reward = self._self_reward_hook() if spark.self_reward is not None else None
        self.add_callback(StopAfterPolicySteps(self, optimizer_steps_per_round(self.args)))
        self.add_callback(StepTimes(self.clock))

    def _self_reward_hook(self) -> SelfRewardHook:
        """The router's self-judging hook: the live model judges, with judge prompts rendered
        as recycled judge items are (the run's templates, chat template and system prompt)."""
        if isinstance(self.processing_class, ProcessorMixin):
            raise ConfigError("spark.self_reward: self-judged rewards are not supported for vision-language models yet")
        config = self.spark.self_reward

        def render(prompt: Any) -> list[dict[str, Any]]:
            judge_item = Example(prompt.text, "", prompt.images, TASK_POINTWISE)
            return example_row(judge_item, self.prompt_config)["prompt"]

        local_rows = self.args.per_device_train_batch_size * self.args.steps_per_generation
        judge = LiveJudge(self, config, render, batch_size=local_rows)
        hook = SelfRewardHook(self, config, judge, self.recycling.templates, self.clock)
        self.router.self_judge = hook
        return hook

    def _budgeted(self, recycling: RecyclingConfig) -> RecyclingConfig:
        """`recycling` with the prompt budget the run holds recycled prompts to, said once."""
        overhead = chat_overhead(self.processing_class, self.prompt_config.system, self.chat_template)
        context = prompt_token_limit(self.args, self.model.config, overhead)
        budgeted = recycled_prompt_budget(recycling, None if context is None else context[1])
        if self.accelerator.is_main_process and self.spark.schedule != "off":
            where = "the model's context is unknown" if context is None else (
                f"the model's context of {context[0]} tokens leaves {context[1]} after grpo.max_completion_length "
                f"{self.args.max_completion_length} and {overhead} of chat template")
            print(f"[sparkrl] recycled prompts: at most {budgeted.max_prompt_tokens} tokens of text "
                  f"(spark.recycling.max_prompt_tokens {recycling.max_prompt_tokens}; {where}), over it: "
                  f"{recycling.over_budget}")
        return budgeted

    # -- point 1: each generation round ---------------------------------------------------
    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        vision = isinstance(self.processing_class, ProcessorMixin)
        if not self.model.training:
            return super()._generate_and_score_completions(with_images(inputs, vision))
        started = time.perf_counter()
        group_size = self.num_generations
        state = self.round_state
        round_index = state.rounds
        plan, prompts = self._fill_round(unique_prompts(gather_object(inputs), group_size))
        global_rows = [row for row in prompts for _ in range(group_size)]
        rank, local = self.accelerator.process_index, len(inputs)
        mine = global_rows[rank * local : (rank + 1) * local]
        if self.self_reward is not None:
            self.self_reward.begin_round(round_index, round_seed(self.args.seed, round_index))
        trl_started = time.perf_counter()
        self.router.last_rows = []
        output = super()._generate_and_score_completions(with_images(mine, vision))
        if len(self.router.last_rows) != len(mine):
            raise RuntimeError(f"the reward router scored {len(self.router.last_rows)} of the round's {len(mine)} rows")
        trl_seconds = time.perf_counter() - trl_started

        scored = gather_object(self.router.last_rows)
        self._watch_signal(output["advantages"], global_rows, scored, round_index)
        if self.spark.schedule != "off":
            groups = rollout_groups(global_rows, scored, group_size, self.spark.recycle_recycled)
            items, stats = recycle(groups, self.recycling, seed=round_seed(self.args.seed, round_index),
                                   label_balance=state.label_balance, count_tokens=self.count_tokens)
            state.label_balance = stats.label_balance
            state.add_items((item.to_dict() for item in items), self.spark.pool_capacity)
            self.last_recycling_stats = stats.flat()
        self._write_round_log(round_index, plan.recycled, prompts)
        self.clock.add("trl_round", trl_seconds)
        self.clock.add("recycling", time.perf_counter() - started - trl_seconds)
        return output

    def _fill_round(self, incoming: Sequence[dict[str, Any]]) -> tuple[RoundPlan, list[dict[str, Any]]]:
        """The round's plan and prompts: recycled items, then dataset prompts, then unlabeled
        prompts (a share of the dataset slots, when data.unlabeled is given)."""
        state = self.round_state
        plan = plan_round(
            self.spark.schedule,
            slots=len(incoming),
            waiting=len(state.pool),
            previous_was_recycled=state.previous_was_recycled,
            mix_share=self.spark.mix_share,
        )
        self._log_metric("spark/pool_waiting", float(len(state.pool)))
        n_unlabeled = unlabeled_slots(plan.dataset, self.spark.unlabeled_share) if self.unlabeled else 0
        taken = state.unlabeled_taken
        recycled, dataset = fill_round(state, plan, incoming, unlabeled=n_unlabeled)
        picked = unlabeled_indices(taken, n_unlabeled, len(self.unlabeled), self.args.seed) if n_unlabeled else []
        prompts = [example_row(Example.from_dict(item), self.prompt_config) for item in recycled]
        return plan, prompts + dataset + [self.unlabeled[i] for i in picked]

    def _watch_signal(
        self, advantages: Any, rows: Sequence[Mapping[str, Any]], scored: Sequence[ScoredRow], round_index: int
    ) -> None:
        """Shares of the round's groups without learning signal, per kind, for the logs; and a
        warning (main process) when most groups of a kind had none."""
        gathered = self.accelerator.gather(advantages.detach())
        per_row = gathered.reshape(len(rows), -1).abs().amax(dim=1).tolist()
        tasks = [row["task"] for row in rows]
        counts = no_signal_groups(per_row, tasks, self.num_generations)
        flat_total, total = (sum(column) for column in zip(*counts.values()))
        self.signal_since_log.append({
            "spark/no_signal_groups": flat_total / total,
            **{f"spark/no_signal_groups/{kind}": flat / n for kind, (flat, n) in counts.items()},
        })
        if not self.accelerator.is_main_process:
            return
        for kind, (flat, n) in counts.items():
            if self.signal_watch.should_warn(kind, flat / n, round_index):
                verdicts = [s.verdict for s in scored if prompt_kind(s.task) == kind]
                no_answer = sum(v.reason == "no-answer" for v in verdicts)
                logger.warning(no_signal_warning(kind, flat, n, round_index, [v.score for v in verdicts], no_answer))

    # -- point 5: where a round's time goes ------------------------------------------------
    def _generate(self, prompts: list[Any]) -> Any:
        with self._timed("generation"):
            return super()._generate(prompts)

    def _calculate_rewards(self, inputs: Any, prompts: Any, completions: Any, completion_ids_list: Any) -> Any:
        with self._timed("scoring"):
            return super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)

    def _timed(self, phase: str) -> contextlib.AbstractContextManager[None]:
        # Evaluation generates and scores too, outside the optimizer steps the phases divide.
        return self.clock.timed(phase) if self.model.training else contextlib.nullcontext()

    # -- point 4: text rows beside image rows ---------------------------------------------
    def _tokenize_prompts(self, prompts: list[Any]) -> tuple[Any, Any, Any]:
        prompt_ids, images, fields = super()._tokenize_prompts(prompts)
        if images is not None:
            images = [found or [] for found in images]
        return prompt_ids, images, fields

    def _generate_single_turn(self, prompt_ids: Any, images: Any, *args: Any, **kwargs: Any) -> Any:
        # vLLM reads None as "no image" (and takes the first image of a non-empty list); the
        # forward pass keeps the [] that _tokenize_prompts gave text-only rows.
        if self.use_vllm and images is not None:
            images = [found or None for found in images]
        return super()._generate_single_turn(prompt_ids, images, *args, **kwargs)

    def _write_round_log(self, round_index: int, n_recycled: int, prompts: Sequence[Mapping[str, Any]]) -> None:
        """Per-process record of what each round trained on (lets users and tests compare ranks)."""
        folder = Path(self.args.output_dir) / ROUND_LOG_DIR
        folder.mkdir(parents=True, exist_ok=True)
        record = {
            "round": round_index,
            "global_step": self.state.global_step,
            "recycled": n_recycled,
            "tasks": [row["task"] for row in prompts],
            "items": [row["example"] for row in prompts],
        }
        with open(folder / f"rank-{self.accelerator.process_index}.jsonl", "a") as handle:
            handle.write(json.dumps(record) + "\n")

    # -- point 2: checkpoints -----------------------------------------------------------------
    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            folder = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
            state = self.round_state.to_dict()
            if self.self_reward is not None:
                state["self_reward"] = self.self_reward.state.to_dict()
            tmp = folder / (STATE_FILE + ".tmp")
            tmp.write_text(json.dumps(state))
            os.replace(tmp, folder / STATE_FILE)

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is not None:
            path = Path(checkpoint) / STATE_FILE
            if not path.exists():
                raise ConfigError(f"{path}: checkpoint has no sparkrl state; cannot resume a SPARK run from it")
            record = json.loads(path.read_text())
            self.round_state = RoundState.from_dict(record)
            # A checkpoint of a run without self-judged rewards leaves a fresh self-reward state.
            if self.self_reward is not None and "self_reward" in record:
                self.self_reward.state = SelfRewardState.from_dict(record["self_reward"])

    # -- point 3: logs --------------------------------------------------------------------------
    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self.model is not None and self.model.training:
            state = self.round_state
            logs.update(
                {
                    "spark/pool_size": float(len(state.pool)),
                    "spark/deferred_prompts": float(len(state.deferred)),
                    "spark/policy_rounds": float(state.policy_rounds),
                    "spark/recycled_rounds": float(state.recycled_rounds),
                    "spark/items_built": float(state.items_built),
                    "spark/items_trained": float(state.items_trained),
                    "spark/items_dropped": float(state.items_dropped),
                    **{f"spark/label_balance/{mode}": float(n) for mode, n in state.label_balance.items()},
                }
            )
            for key, value in self.last_recycling_stats.items():
                if isinstance(value, int | float):
                    logs[f"spark/recycled_last_round/{key}"] = float(value)
            logs.update(mean_per_key(self.signal_since_log))  # per round, as TRL's frac_reward_zero_std
            self.signal_since_log = []
            if self.self_reward is not None:
                logs.update(mean_per_key(self.self_reward.since_log))
                self.self_reward.since_log = []
            logs.update({f"spark/time/{phase}_s": seconds for phase, seconds in round_times(self.clock.take()).items()})
        super().log(logs, start_time)


class StopAfterPolicySteps(TrainerCallback):
    """Ends training once the configured number of policy rounds has been trained.

    `max_steps` is set as an upper bound (policy rounds plus the most recycled rounds the
    schedule can add); this callback makes the policy budget, not the step count, decisive.
    The policy round counter goes up when a round is generated, before its optimizer steps
    run, so the run stops only at the end of a round (every `steps_per_round` steps).
    """

    def __init__(self, trainer: SparkGRPOTrainer, steps_per_round: int) -> None:
        self.trainer = trainer
        self.steps_per_round = steps_per_round

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        round_done = state.global_step % self.steps_per_round == 0
        if round_done and self.trainer.round_state.policy_rounds >= self.trainer.spark.policy_steps:
            control.should_training_stop = True
        return control


class StepTimes(TrainerCallback):
    """Times whole optimizer steps (a round is generated inside the first step that needs it),
    from the start of training on."""

    def __init__(self, clock: PhaseClock) -> None:
        self.clock = clock
        self.started: float | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.clock.restart()

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.started = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.started is not None:
            self.clock.add("steps", time.perf_counter() - self.started)
            self.started = None


class MetricsFile(TrainerCallback):
    """Appends every logged dict, with its step, to `metrics.jsonl` in the run folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if logs is None or not state.is_world_process_zero:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as handle:
            handle.write(json.dumps({"step": state.global_step, **logs}) + "\n")
