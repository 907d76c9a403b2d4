"""Inference: generation backends (Hugging Face, vLLM, OpenAI-compatible) and test-time strategies.

Nothing heavy is imported here: torch and transformers load when an `HFBackend` is built,
vllm when a `VLLMBackend` is.
"""

from sparkrl.inference.backends import (
    Backend,
    BackendError,
    EndpointConfig,
    Generation,
    HFBackend,
    Messages,
    OpenAIBackend,
    SamplingParams,
    VLLMBackend,
    VLLMEngineConfig,
    chat_messages,
)
from sparkrl.inference.strategies import (
    STRATEGIES,
    Attempt,
    Candidate,
    StrategySettings,
    Task,
    run_strategy,
    verdict_probability,
)

__all__ = [
    "STRATEGIES",
    "Attempt",
    "Backend",
    "BackendError",
    "Candidate",
    "EndpointConfig",
    "Generation",
    "HFBackend",
    "Messages",
    "OpenAIBackend",
    "SamplingParams",
    "StrategySettings",
    "Task",
    "VLLMBackend",
    "VLLMEngineConfig",
    "chat_messages",
    "run_strategy",
    "verdict_probability",
]
