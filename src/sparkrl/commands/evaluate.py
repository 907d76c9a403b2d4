"""`sparkrl eval KIND`: evaluate a model on reasoning, pointwise or pairwise judging items, or
as the judge that ranks the k responses of best-of-k items (bestof: RewardBench 2);
`sparkrl eval report`: compare finished evaluations (`sparkrl.commands.eval_report`).

Examples:
    sparkrl eval reasoning --model out/final --data gsm8k:/data/gsm8k_test.jsonl --out eval/gsm8k \\
        --strategy single --strategy reflection --limit 200
    sparkrl eval pairwise --backend openai --base-url http://127.0.0.1:8000 --model my-model \\
        --data gsm8k-solutions:/data/gsm8k_model_solutions.jsonl --out eval/pairs
    sparkrl eval bestof --model out/final --data rewardbench2:/data/reward-bench-2/test.parquet --out eval/rb2
    sparkrl eval report eval/gsm8k eval/gsm8k-spark --names base,spark --out eval/report

See docs/evaluation.md for the data formats, the strategies and the output files.
"""

from __future__ import annotations

import argparse
import sys

from sparkrl.benchmarks import BESTOF_MODES, DEFAULT_BESTOF_MODE, KINDS
from sparkrl.commands import eval_report

HELP = f"evaluate a model ({', '.join(KINDS)}) with test-time strategies, or compare evaluations (report)"

STRATEGY_NAMES = ("single", "reflection", "best_of_n", "majority", "weighted_majority")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One subcommand per evaluation kind, with the options below, and `report`."""
    parser.epilog = "`sparkrl eval KIND --help` lists the options of each."
    sub = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    for kind in KINDS:
        what = ("rank the k responses of best-of-k items (RewardBench 2) by the model's own verdicts"
                if kind == "bestof" else f"evaluate a model on {kind} items with test-time strategies")
        kind_parser = sub.add_parser(kind, help=f"evaluate on {kind} items", description=f"{what} (docs/evaluation.md)")
        add_run_arguments(kind_parser)
        if kind == "bestof":
            kind_parser.add_argument(
                "--bestof-mode", choices=BESTOF_MODES, default=DEFAULT_BESTOF_MODE,
                help="how the k responses are scored: the model's pointwise verdict on each (k judge calls) or "
                "its wins over every pair in both orders (k(k-1) calls)",
            )
    eval_report.add_arguments(sub.add_parser("report", help=eval_report.HELP, description=eval_report.HELP))


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", required=True,
        help="model folder or LoRA adapter folder (hf), model folder (vllm), or served model name (openai)",
    )
    parser.add_argument(
        "--data", required=True,
        help="data file, or FORMAT:PATH with FORMAT gsm8k, gsm8k-solutions, mathvista, mathverse, mathvision, "
        "wemath, dynamath, logicvista, mmk12, math500, spark-eval (reasoning), vl-rewardbench (pairwise) or "
        "rewardbench2 (best-of-k; docs/evaluation.md)",
    )
    parser.add_argument("--out", required=True, help="results folder (reused to resume an interrupted run)")
    parser.add_argument(
        "--image-cache", metavar="DIR",
        help="where images embedded in the data file are decoded (default: sparkrl-images/ beside the data file)",
    )
    parser.add_argument(
        "--strategy", action="append", choices=STRATEGY_NAMES, dest="strategies",
        help="test-time strategy; repeat for several (default: single)",
    )
    parser.add_argument("--backend", choices=("hf", "vllm", "openai"), default="hf")
    parser.add_argument(
        "--chat-template", metavar="FILE.jinja",
        help="hf and vllm backends: chat template for a model without one (a base model)",
    )
    parser.add_argument("--base-url", help="openai backend: server address, e.g. http://127.0.0.1:8000")
    parser.add_argument("--api-key-env", help="openai backend: environment variable that holds the API key")
    parser.add_argument("--concurrency", type=int, default=8, help="openai backend: requests in flight")
    parser.add_argument(
        "--request-timeout", type=float, default=120.0, help="openai backend: seconds per request"
    )
    parser.add_argument("--retries", type=int, default=3, help="openai backend: retries on 5xx/connection errors")
    parser.add_argument("--device", default="cpu", help="hf backend: torch device (cpu, cuda, cuda:1)")
    parser.add_argument(
        "--dtype", default="auto", help="hf and vllm backends: dtype (auto, float32, bfloat16, float16)"
    )
    parser.add_argument("--batch-size", type=int, default=16, help="hf backend: sequences per generate call")
    parser.add_argument(
        "--tensor-parallel-size", type=int, default=1, help="vllm backend: GPUs the model is split over"
    )
    parser.add_argument(
        "--gpu-memory-utilization", type=float, default=0.9,
        help="vllm backend: fraction of each GPU's memory vLLM may claim",
    )
    parser.add_argument(
        "--max-model-len", type=int, help="vllm backend: longest prompt + completion in tokens (default: the model's)"
    )
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--n", type=int, default=1, help="samples per question (best_of_n, votes, maj@k)")
    parser.add_argument("--max-new-tokens", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0, help="sampling seed; also picks gsm8k-solutions items")
    parser.add_argument("--rounds", type=int, default=2, help="reflection: most revisions")
    parser.add_argument("--judge-samples", type=int, default=4, help="verdicts sampled when no token probabilities")
    parser.add_argument("--judge-max-new-tokens", type=int, default=256)
    parser.add_argument("--suffix", help="answer-format instruction appended to reasoning questions")
    parser.add_argument(
        "--templates", default="default",
        help="judge and reflection prompt pools: default, tiny (the embedded demo model's) or "
        "package.module:ATTRIBUTE (a TemplateSet of your own)",
    )
    parser.add_argument("--limit", type=int, help="evaluate only the first N items")
    parser.add_argument("--overwrite", action="store_true", help="discard results of other settings in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def build_backend(args: argparse.Namespace):
    from sparkrl.inference import backends

    if args.backend == "hf":
        return backends.HFBackend.from_pretrained(
            args.model, device=args.device, dtype=args.dtype, batch_size=args.batch_size,
            chat_template=args.chat_template,
        )
    if args.backend == "vllm":
        engine = backends.VLLMEngineConfig(
            tensor_parallel_size=args.tensor_parallel_size,
            gpu_memory_utilization=args.gpu_memory_utilization,
            max_model_len=args.max_model_len,
            dtype=args.dtype,
            seed=args.seed,
        )
        return backends.VLLMBackend(args.model, engine, chat_template=args.chat_template)
    if not args.base_url:
        raise backends.BackendError("--backend openai needs --base-url")
    return backends.OpenAIBackend(
        backends.EndpointConfig(
            base_url=args.base_url,
            model=args.model,
            api_key=backends.api_key_from_env(args.api_key_env),
            max_concurrency=args.concurrency,
            retries=args.retries,
            timeout_s=args.request_timeout,
        )
    )


def build_config(args: argparse.Namespace):
    from sparkrl.evaluation import EvalConfig
    from sparkrl.inference import SamplingParams, StrategySettings
    from sparkrl.templates import resolve_templates

    sampling = SamplingParams(
        n=args.n,
        temperature=args.temperature,
        top_p=args.top_p,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
    )
    settings = StrategySettings(
        sampling=sampling,
        templates=resolve_templates(args.templates),
        rounds=args.rounds,
        judge_samples=args.judge_samples,
        judge_max_new_tokens=args.judge_max_new_tokens,
    )
    extra = {} if args.suffix is None else {"suffix": args.suffix}
    return EvalConfig(
        kind=args.kind,
        strategies=tuple(args.strategies or ("single",)),
        settings=settings,
        chunk_size=max(args.batch_size, 1) * 2,
        overwrite=args.overwrite,
        show_progress=not args.no_progress,
        bestof_mode=getattr(args, "bestof_mode", DEFAULT_BESTOF_MODE),
        **extra,
    )


def run(args: argparse.Namespace) -> int:
    if args.kind == "report":
        return eval_report.run(args)
    from sparkrl.benchmarks import load_items
    from sparkrl.evaluation import EvalError, evaluate
    from sparkrl.inference import BackendError

    if args.limit is not None and args.limit < 1:
        print("sparkrl eval: --limit must be >= 1", file=sys.stderr)
        return 2
    try:
        config = build_config(args)
        items = load_items(args.kind, args.data, seed=args.seed, image_cache=args.image_cache)[: args.limit]
        backend = build_backend(args)
        summary = evaluate(items, backend, config, args.out, data=args.data)
    except (ValueError, EvalError, BackendError) as err:  # data errors are ValueErrors
        print(f"sparkrl eval: {err}", file=sys.stderr)
        return 2
    for name, stats in summary["strategies"].items():
        score = "" if "score" not in stats else f"RewardBench 2 score {_number(stats['score'])}, "
        print(f"{name}: {score}accuracy {_number(stats['accuracy'])} on {stats['n']} items")
    print(f"results in {args.out} (summary.json, summary.md)")
    return 0


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
