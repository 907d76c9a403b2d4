"""Generation backends behind one interface: Hugging Face `generate`, vLLM, OpenAI-compatible.

Every backend turns a batch of chat conversations into `n` generations each. Where it can,
a backend also returns, for every generated token, the most likely alternatives with their
log-probabilities (`SamplingParams.top_logprobs > 0`): the self-judging strategies read the
probability of the verdict `Yes` from them, in the spirit of GenRM's verdict-token
probability. Backends that cannot (or servers that do not) return `Generation.top_logprobs`
as None, and the strategies fall back to counting sampled verdicts.

Seeds are explicit. The Hugging Face backend reseeds torch's generator per batch (inside a
forked RNG state, so callers' random state is untouched); sampled texts therefore depend on
the batch layout, greedy texts do not beyond floating-point noise.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import mimetypes
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

Messages = list[dict[str, Any]]


class BackendError(RuntimeError):
    """A backend could not produce generations (server errors, time limits, missing package)."""


@dataclass(frozen=True)
class SamplingParams:
    """How to sample: `temperature == 0` means greedy (then all `n` copies are identical)."""

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: int = 0
    top_logprobs: int = 0

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"SamplingParams.n must be >= 1, got {self.n}")
        if self.temperature < 0:
            raise ValueError(f"SamplingParams.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"SamplingParams.top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"SamplingParams.max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if not 0 <= self.top_logprobs <= 20:
            raise ValueError(f"SamplingParams.top_logprobs must be in [0, 20], got {self.top_logprobs}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass(frozen=True)
class Generation:
    """One generated text. `tokens` and `top_logprobs` are aligned per generated token and only
    present when log-probabilities were asked for and the backend supplied them."""

    text: str
    tokens: tuple[str, ...] | None = None
    top_logprobs: tuple[Mapping[str, float], ...] | None = None
    finish_reason: str | None = None

    def __post_init__(self) -> None:
        if (self.tokens is None) != (self.top_logprobs is None):
            raise ValueError("Generation.tokens and top_logprobs must be given together")
        if self.tokens is not None and len(self.tokens) != len(self.top_logprobs or ()):
            raise ValueError("Generation.tokens and top_logprobs must have the same length")


class Backend(Protocol):
    """What strategies and evaluation need from a model."""

    def generate(self, prompts: Sequence[Messages], params: SamplingParams) -> list[list[Generation]]:
        """`params.n` generations for each conversation, in order."""
        ...

    def describe(self) -> dict[str, Any]:
        """What identifies the model for result fingerprints (backend name, model path)."""
        ...


def chat_messages(prompt: str, system: str | None = None, images: Sequence[str] = ()) -> Messages:
    """A one-turn conversation; images become OpenAI-style `image_url` parts with data URLs."""
    messages: Messages = [{"role": "system", "content": system}] if system else []
    if images:
        parts: list[dict[str, Any]] = [
            {"type": "image_url", "image_url": {"url": image_data_url(path)}} for path in images
        ]
        parts.append({"type": "text", "text": prompt})
        messages.append({"role": "user", "content": parts})
    else:
        messages.append({"role": "user", "content": prompt})
    return messages


def image_data_url(path: str) -> str:
    """`data:<mime>;base64,...` for an image file (how chat endpoints accept local images)."""
    mime = mimetypes.guess_type(path)[0] or "application/octet-stream"
    try:
        payload = Path(path).read_bytes()
    except OSError as err:
        raise BackendError(f"cannot read image {path}: {err}") from err
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def decode_image_url(url: str) -> Any:
    """The PIL image of a `data:` URL (as `image_data_url` writes them)."""
    import io

    from PIL import Image

    head, sep, payload = url.partition(",")
    if not (head.startswith("data:") and head.endswith(";base64") and sep):
        raise BackendError(f"the hf backend takes images as base64 data URLs, got {url[:60]!r}")
    try:
        image = Image.open(io.BytesIO(base64.b64decode(payload)))
        image.load()
    except (OSError, ValueError) as err:
        raise BackendError(f"cannot decode image data URL ({head}): {err}") from err
    return image


def _text_only(messages: Messages, backend: str) -> Messages:
    for message in messages:
        if not isinstance(message.get("content"), str):
            raise BackendError(f"the {backend} backend handles text only; this prompt has images")
    return messages


# --------------------------------------------------------------------------- Hugging Face


class HFBackend:
    """Batched `model.generate` with left padding and the chat template.

    `tokenizer` is the model's tokenizer or, for a vision-language model, its processor (image
    processor + tokenizer); only then may prompts hold images. Images arrive as the data URLs
    of `chat_messages` and are decoded back to PIL images for the processor.
    """

    def __init__(self, model: Any, tokenizer: Any, *, batch_size: int = 8, name: str = "") -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.processor = tokenizer if getattr(tokenizer, "image_processor", None) is not None else None
        if self.processor is not None:
            tokenizer = self.processor.tokenizer
        if (self.processor or tokenizer).chat_template is None:
            raise BackendError(f"tokenizer of {name or 'the model'} has no chat template")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.name = name
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self._stop_ids = {tokenizer.pad_token_id, *_eos_ids(model, tokenizer)}

    @classmethod
    def from_pretrained(
        cls,
        path: str,
        *,
        device: str = "cpu",
        dtype: str = "auto",
        batch_size: int = 8,
        chat_template: str | None = None,
    ) -> HFBackend:
        """A model folder, a LoRA adapter folder (merged into its base) or a merged run's
        `final/`, read from local files only; `chat_template` is a Jinja file for a model
        without one."""
        from sparkrl.errors import ConfigError
        from sparkrl.models import load_model_and_tokenizer

        try:
            model, processing = load_model_and_tokenizer(path, dtype, chat_template=chat_template)
        except ConfigError as err:
            raise BackendError(str(err)) from None
        return cls(model.to(device), processing, batch_size=batch_size, name=path)

    @property
    def chat_template(self) -> str:
        return (self.processor or self.tokenizer).chat_template

    def describe(self) -> dict[str, Any]:
        return {"backend": "hf", "model": self.name, **_template_note(self.chat_template)}

    def generate(self, prompts: Sequence[Messages], params: SamplingParams) -> list[list[Generation]]:
        requests = [self._render(m) for m in prompts]
        copies = 1 if params.greedy else params.n
        per_batch = max(1, self.batch_size // copies)
        out: list[list[Generation]] = []
        for batch_index, start in enumerate(range(0, len(requests), per_batch)):
            rows = self._generate_batch(requests[start : start + per_batch], params, copies, batch_index)
            for i in range(0, len(rows), copies):
                group = rows[i : i + copies]
                out.append(group * params.n if params.greedy else group)
        return out

    def _render(self, messages: Messages) -> tuple[str, list[Any]]:
        """The chat-templated prompt text and the images it holds, in order."""
        if self.processor is None:
            messages = _text_only(messages, "hf")
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True), []
        images: list[Any] = []
        converted = []
        for message in messages:
            content = message["content"]
            if not isinstance(content, str):
                parts = []
                for part in content:
                    if part.get("type") == "image_url":
                        images.append(decode_image_url(part["image_url"]["url"]))
                        part = {"type": "image"}
                    parts.append(part)
                content = parts
            converted.append({**message, "content": content})
        text = self.processor.apply_chat_template(converted, tokenize=False, add_generation_prompt=True)
        return text, images

    def _encode(self, requests: list[tuple[str, list[Any]]]) -> Any:
        texts = [text for text, _ in requests]
        if self.processor is None:
            return self.tokenizer(
                texts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False
            ).to(self.model.device)
        images = [image for _, row in requests for image in row]
        enc = self.processor(
            text=texts, images=images or None, return_tensors="pt", padding=True, padding_side="left",
            add_special_tokens=False,
        )
        return enc.to(device=self.model.device, dtype=self.model.dtype)  # dtype: pixel values only

    def _generate_batch(
        self, requests: list[tuple[str, list[Any]]], params: SamplingParams, copies: int, batch_index: int
    ) -> list[Generation]:
        import torch

        if self.processor is not None and copies > 1:
            # generate() repeats pixel rows per prompt, which fits only prompts with exactly one
            # image; repeating the prompts themselves fits any number.
            requests = [request for request in requests for _ in range(copies)]
            copies = 1
        enc = self._encode(requests)
        sampling: dict[str, Any] = (
            {"do_sample": False}
            if params.greedy
            else {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p}
        )
        with torch.random.fork_rng(devices=_cuda_devices(self.model)), torch.no_grad():
            torch.manual_seed(params.seed + batch_index)
            result = self.model.generate(
                **enc,
                **sampling,
                max_new_tokens=params.max_new_tokens,
                num_return_sequences=copies,
                pad_token_id=self.tokenizer.pad_token_id,
                return_dict_in_generate=True,
                output_logits=params.top_logprobs > 0,
            )
        new_ids = result.sequences[:, enc["input_ids"].shape[1] :].tolist()
        logprobs = None
        if params.top_logprobs > 0:
            stacked = torch.stack(result.logits, dim=1).float().log_softmax(-1)
            logprobs = stacked.topk(params.top_logprobs, dim=-1)
        return [self._to_generation(row, ids, logprobs) for row, ids in enumerate(new_ids)]

    def _to_generation(self, row: int, ids: list[int], logprobs: Any) -> Generation:
        length = next((i for i, t in enumerate(ids) if t in self._stop_ids), len(ids))
        finish = "stop" if length < len(ids) else "length"
        text = self.tokenizer.decode(ids[:length], skip_special_tokens=True)
        if logprobs is None:
            return Generation(text, finish_reason=finish)
        values, indices = logprobs.values[row, :length].tolist(), logprobs.indices[row, :length].tolist()
        tokens = tuple(self.tokenizer.decode([t]) for t in ids[:length])
        top = tuple(
            {self.tokenizer.decode([i]): v for i, v in zip(step_ids, step_values)}
            for step_ids, step_values in zip(indices, values)
        )
        return Generation(text, tokens, top, finish)


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    configured = getattr(model.generation_config, "eos_token_id", None)
    ids = configured if isinstance(configured, list) else [configured]
    return {i for i in [*ids, tokenizer.eos_token_id] if i is not None}


def _cuda_devices(model: Any) -> list[int]:
    device = model.device
    return [device.index or 0] if device.type == "cuda" else []


# --------------------------------------------------------------------------- vLLM


@dataclass(frozen=True)
class VLLMEngineConfig:
    """The `vllm.LLM` engine settings we expose; None leaves vLLM's own default.

    tensor_parallel_size: GPUs one model is split over.
    gpu_memory_utilization: fraction (0, 1] of each GPU's memory vLLM may claim.
    max_model_len: longest prompt plus completion, in tokens (None: the model's own).
    dtype: weight and activation dtype ("auto", "bfloat16", "float16", "float32").
    seed: the engine's seed (per-request seeds come from SamplingParams).
    """

    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None
    dtype: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.tensor_parallel_size < 1:
            raise ValueError(f"tensor_parallel_size must be >= 1, got {self.tensor_parallel_size}")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ValueError(f"gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}")
        if self.max_model_len is not None and self.max_model_len < 1:
            raise ValueError(f"max_model_len must be >= 1, got {self.max_model_len}")
        if not self.dtype:
            raise ValueError("dtype must be a non-empty string such as 'auto' or 'bfloat16'")

    def llm_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `vllm.LLM`, unset ones left out."""
        return {key: value for key, value in asdict(self).items() if value is not None}


class VLLMBackend:
    """Offline inference with `vllm.LLM`; vllm is imported only when this backend is built."""

    def __init__(self, path: str, engine: VLLMEngineConfig | None = None, chat_template: str | None = None) -> None:
        """`path`: a model folder (a LoRA run's merged `final/` works; an adapter folder alone
        does not: vLLM loads full weights). `chat_template`: a Jinja file for a model without one."""
        from sparkrl.errors import ConfigError
        from sparkrl.models import is_adapter_folder, local_model_folder, read_chat_template

        self.engine = engine or VLLMEngineConfig()
        try:
            import vllm
        except ImportError as err:
            raise BackendError(
                "the vllm backend needs the `vllm` package, which is not installed here; "
                "install it on a GPU machine (pip install 'sparkrl[vllm]') or use --backend hf"
            ) from err
        try:
            local_model_folder(path)  # never a hub name: vLLM would download it
            self.chat_template = read_chat_template(chat_template) if chat_template else None
        except ConfigError as err:
            raise BackendError(str(err)) from None
        if is_adapter_folder(path):
            raise BackendError(f"{path}: a LoRA adapter folder; give vLLM the merged model (a run's final/)")
        self._vllm = vllm
        self.name = path
        self.llm = vllm.LLM(model=path, **self.engine.llm_kwargs())

    def describe(self) -> dict[str, Any]:
        return {"backend": "vllm", "model": self.name, **_template_note(self.chat_template)}

    def generate(self, prompts: Sequence[Messages], params: SamplingParams) -> list[list[Generation]]:
        sampling = self._vllm.SamplingParams(
            n=params.n,
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_new_tokens,
            seed=params.seed,
            logprobs=params.top_logprobs or None,
        )
        template = {"chat_template": self.chat_template} if self.chat_template else {}
        outputs = self.llm.chat(list(prompts), sampling, use_tqdm=False, **template)
        return [[vllm_generation(c) for c in request.outputs] for request in outputs]


def _template_note(template: str | None) -> dict[str, str]:
    """The chat template's fingerprint, so that a resumed evaluation with another template is
    told apart (its prompts differ)."""
    import hashlib

    return {"chat_template_sha256": hashlib.sha256(template.encode()).hexdigest()[:16]} if template else {}


def vllm_generation(completion: Any) -> Generation:
    """A vLLM `CompletionOutput` as a `Generation` (token texts from `decoded_token`)."""
    steps = getattr(completion, "logprobs", None)
    if not steps:
        return Generation(completion.text, finish_reason=completion.finish_reason)
    tokens = tuple(step[tid].decoded_token or "" for tid, step in zip(completion.token_ids, steps))
    top = tuple({lp.decoded_token or "": lp.logprob for lp in step.values()} for step in steps)
    return Generation(completion.text, tokens, top, completion.finish_reason)


# --------------------------------------------------------------------------- OpenAI-compatible


@dataclass(frozen=True)
class EndpointConfig:
    """An OpenAI-compatible chat endpoint (a served vLLM, or any hosted API)."""

    base_url: str
    model: str
    api_key: str | None = None
    max_concurrency: int = 8
    retries: int = 3
    backoff_s: float = 1.0
    timeout_s: float = 120.0

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {self.base_url!r}")
        if self.max_concurrency < 1 or self.retries < 0:
            raise ValueError("max_concurrency must be >= 1 and retries >= 0")
        if self.timeout_s <= 0 or self.backoff_s < 0:
            raise ValueError("timeout_s must be > 0 and backoff_s >= 0")

    @property
    def url(self) -> str:
        base = self.base_url.rstrip("/")
        return f"{base}/chat/completions" if base.endswith("/v1") else f"{base}/v1/chat/completions"


class _Retryable(Exception):
    pass


class _Deadline:
    """A total time limit on one HTTP exchange, connection to last byte.

    urllib's `timeout` bounds each socket operation, so a server that sends a byte now and
    then would hold a request for ever. When the time is up, a watcher thread shuts down the
    sockets of the exchange's connections (a redirect opens another), which ends any read in
    progress; it keeps doing so until the exchange gives up, for a connection that was still
    being opened.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._watcher = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> _Deadline:
        self._watcher.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._watcher.join()

    def handlers(self) -> list[urllib.request.BaseHandler]:
        """urllib handlers whose connections this deadline can end."""
        return [_DeadlineHTTPHandler(self), _DeadlineHTTPSHandler(self)]

    def track(self, http_class: Any) -> Any:
        """A factory of `http_class` connections whose sockets this deadline records.

        The socket is recorded when it connects: urllib drops the connection's own reference
        once the headers are in, while the response body is still to be read through it.
        """

        def make(host: str, **kwargs: Any) -> http.client.HTTPConnection:
            connection = http_class(host, **kwargs)
            connect = connection.connect

            def connect_and_record() -> None:
                connect()
                with self._lock:
                    self._sockets.append(connection.sock)

            connection.connect = connect_and_record  # type: ignore[method-assign]
            return connection

        return make

    def _watch(self) -> None:
        if self._done.wait(self.seconds):
            return
        self.expired = True
        while True:
            with self._lock:
                sockets = list(self._sockets)
            for sock in sockets:
                with contextlib.suppress(OSError):
                    # The plain socket's shutdown, also for TLS: it ends reads at the next
                    # byte without tearing down the TLS state under the reading thread.
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
            if self._done.wait(0.05):
                return


def _deadline_do_open(handler: Any, http_class: Any, request: urllib.request.Request, **kwargs: Any) -> Any:
    return urllib.request.AbstractHTTPHandler.do_open(handler, handler.deadline.track(http_class), request, **kwargs)


class _DeadlineHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    do_open = _deadline_do_open


class _DeadlineHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    do_open = _deadline_do_open


class OpenAIBackend:
    """Chat completions over HTTP with the standard library: threads, retries, time limits.

    `timeout_s` is the total time one request may take, connection to last byte (each retry
    gets its own), not only the longest wait for a single read.
    """

    def __init__(self, config: EndpointConfig) -> None:
        self.config = config

    def describe(self) -> dict[str, Any]:
        return {"backend": "openai", "model": self.config.model, "url": self.config.url}

    def generate(self, prompts: Sequence[Messages], params: SamplingParams) -> list[list[Generation]]:
        if not prompts:
            return []
        with ThreadPoolExecutor(max_workers=min(self.config.max_concurrency, len(prompts))) as pool:
            return list(pool.map(lambda m: self._complete(m, params), prompts))

    def _payload(self, messages: Messages, params: SamplingParams) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "n": params.n,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_new_tokens,
            "seed": params.seed,
        }
        if params.top_logprobs:
            payload |= {"logprobs": True, "top_logprobs": params.top_logprobs}
        return payload

    def _complete(self, messages: Messages, params: SamplingParams) -> list[Generation]:
        body = json.dumps(self._payload(messages, params)).encode("utf-8")
        last_error = ""
        for attempt in range(self.config.retries + 1):
            if attempt:
                time.sleep(self.config.backoff_s * 2 ** (attempt - 1))
            try:
                return parse_chat_response(self._post(body))
            except _Retryable as err:
                last_error = str(err)
        raise BackendError(
            f"{self.config.url}: giving up after {self.config.retries + 1} attempts; last error: {last_error}"
        )

    def _post(self, body: bytes) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        request = urllib.request.Request(self.config.url, data=body, headers=headers, method="POST")
        started = time.monotonic()
        with _Deadline(self.config.timeout_s) as deadline:
            try:
                status, data = self._exchange(request, deadline)
            except (http.client.HTTPException, OSError) as err:  # refused connections, timeouts, cut reads
                if deadline.expired or isinstance(err, TimeoutError) or "timed out" in str(err):
                    raise self._time_limit_hit(started) from err
                raise _Retryable(f"connection error: {err}") from err
            if deadline.expired:  # a body without a length, cut short when the time was up
                raise self._time_limit_hit(started)
        if status >= 400:
            detail = data.decode("utf-8", "replace")[:300]
            if status >= 500 or status == 429:
                raise _Retryable(f"HTTP {status}: {detail}")
            raise BackendError(f"{self.config.url}: HTTP {status}: {detail}")
        try:
            return json.loads(data.decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise BackendError(f"{self.config.url}: response is not JSON: {err}") from err

    def _time_limit_hit(self, started: float) -> _Retryable:
        return _Retryable(f"time limit of {self.config.timeout_s:g}s hit ({time.monotonic() - started:.1f}s)")

    def _exchange(self, request: urllib.request.Request, deadline: _Deadline) -> tuple[int, bytes]:
        """The status and body of one HTTP exchange, under `deadline`."""
        opener = urllib.request.build_opener(*deadline.handlers())
        try:
            with opener.open(request, timeout=self.config.timeout_s) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()


def parse_chat_response(response: Mapping[str, Any]) -> list[Generation]:
    """Choices of an OpenAI chat-completions response, with token log-probabilities if present."""
    choices = response.get("choices")
    if not isinstance(choices, list) or not choices:
        raise BackendError(f"chat response has no choices: {str(response)[:300]}")
    out = []
    for choice in sorted(choices, key=lambda c: c.get("index", 0)):
        text = (choice.get("message") or {}).get("content") or ""
        content = (choice.get("logprobs") or {}).get("content")
        if not content:
            out.append(Generation(text, finish_reason=choice.get("finish_reason")))
            continue
        tokens = tuple(step["token"] for step in content)
        top = tuple(
            {alt["token"]: alt["logprob"] for alt in step.get("top_logprobs") or ()}
            | {step["token"]: step["logprob"]}
            for step in content
        )
        out.append(Generation(text, tokens, top, choice.get("finish_reason")))
    return out


def api_key_from_env(name: str | None) -> str | None:
    """The API key held in environment variable `name` (None when no name is given)."""
    if not name:
        return None
    key = os.environ.get(name)
    if not key:
        raise BackendError(f"environment variable {name} (named by --api-key-env) is not set")
    return key
