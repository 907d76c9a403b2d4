"""Generation backends: HF batching and seeds on a tiny model, the vLLM import guard, and the
OpenAI-compatible client against small local HTTP servers (errors, retries, time limits)."""

from __future__ import annotations

import contextlib
import copy
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
import torch

from sparkrl.inference.backends import (
    BackendError,
    EndpointConfig,
    Generation,
    HFBackend,
    OpenAIBackend,
    SamplingParams,
    VLLMBackend,
    VLLMEngineConfig,
    api_key_from_env,
    chat_messages,
    parse_chat_response,
    vllm_generation,
)

# --------------------------------------------------------------------------- value types


@pytest.mark.parametrize(
    "kwargs",
    [{"n": 0}, {"temperature": -0.1}, {"top_p": 0.0}, {"top_p": 1.5}, {"max_new_tokens": 0}, {"top_logprobs": 21}],
)
def test_sampling_params_reject_impossible_values(kwargs):
    with pytest.raises(ValueError):
        SamplingParams(**kwargs)


def test_generation_needs_aligned_tokens_and_logprobs():
    with pytest.raises(ValueError):
        Generation("ab", tokens=("a", "b"), top_logprobs=None)
    with pytest.raises(ValueError):
        Generation("ab", tokens=("a", "b"), top_logprobs=({"a": 0.0},))


def test_chat_messages_text_and_image_data_url(tmp_path):
    assert chat_messages("hi") == [{"role": "user", "content": "hi"}]
    assert chat_messages("hi", system="be brief")[0] == {"role": "system", "content": "be brief"}
    image = tmp_path / "dot.png"
    image.write_bytes(b"\x89PNG fake")
    parts = chat_messages("what is this?", images=[str(image)])[0]["content"]
    assert parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert parts[-1] == {"type": "text", "text": "what is this?"}
    with pytest.raises(BackendError, match="missing.png"):
        chat_messages("q", images=[str(tmp_path / "missing.png")])


# --------------------------------------------------------------------------- Hugging Face


@pytest.fixture
def prompts():
    # Different lengths, so that batches need left padding.
    return [chat_messages("2+3? " * (i + 1)) for i in range(4)]


def test_hf_greedy_batched_equals_one_at_a_time(tiny_model_and_tokenizer, prompts):
    model, tokenizer = tiny_model_and_tokenizer
    params = SamplingParams(max_new_tokens=6)
    batched = HFBackend(model, tokenizer, batch_size=3).generate(prompts, params)
    single = HFBackend(model, tokenizer, batch_size=1).generate(prompts, params)
    assert [g[0].text for g in batched] == [g[0].text for g in single]
    assert all(g[0].finish_reason in ("stop", "length") for g in batched)


def test_hf_sampling_is_seeded_and_leaves_global_rng_alone(tiny_model_and_tokenizer, prompts):
    model, tokenizer = tiny_model_and_tokenizer
    backend = HFBackend(model, tokenizer, batch_size=6)
    params = SamplingParams(n=3, temperature=1.0, max_new_tokens=6, seed=7)
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first = backend.generate(prompts[:2], params)
    assert torch.equal(torch.rand(1), expected_next)
    again = backend.generate(prompts[:2], params)
    other_seed = backend.generate(prompts[:2], SamplingParams(n=3, temperature=1.0, max_new_tokens=6, seed=8))
    texts = [[g.text for g in row] for row in first]
    assert texts == [[g.text for g in row] for row in again]
    assert texts != [[g.text for g in row] for row in other_seed]
    assert [len(row) for row in first] == [3, 3]


def test_hf_greedy_n_copies_and_token_logprobs(tiny_model_and_tokenizer, prompts):
    model, tokenizer = tiny_model_and_tokenizer
    out = HFBackend(model, tokenizer).generate(prompts[:1], SamplingParams(n=2, max_new_tokens=6, top_logprobs=3))
    first, second = out[0]
    assert first == second
    assert "".join(first.tokens) == first.text
    for token, top in zip(first.tokens, first.top_logprobs):
        assert len(top) == 3
        # Greedy picks the most likely token, so it is the best of the alternatives.
        assert max(top, key=top.get) == token
        assert all(lp <= 0.0 for lp in top.values())
        assert math.fsum(math.exp(lp) for lp in top.values()) <= 1.0 + 1e-5


def test_hf_rejects_images_and_tokenizers_without_chat_template(tiny_model_and_tokenizer, tmp_path):
    model, tokenizer = tiny_model_and_tokenizer
    image = tmp_path / "x.png"
    image.write_bytes(b"png")
    with pytest.raises(BackendError, match="text only"):
        HFBackend(model, tokenizer).generate([chat_messages("q", images=[str(image)])], SamplingParams())
    with pytest.raises(ValueError, match="batch_size"):
        HFBackend(model, tokenizer, batch_size=0)
    bare = copy.deepcopy(tokenizer)
    bare.chat_template = None
    with pytest.raises(BackendError, match="no chat template"):
        HFBackend(model, bare)


def test_hf_from_pretrained_loads_a_saved_folder(tiny_model_dir):
    backend = HFBackend.from_pretrained(str(tiny_model_dir), batch_size=2)
    described = backend.describe()
    assert {k: described[k] for k in ("backend", "model")} == {"backend": "hf", "model": str(tiny_model_dir)}
    assert len(described["chat_template_sha256"]) == 16  # another template is another evaluation
    assert len(backend.generate([chat_messages("1+1?")], SamplingParams(max_new_tokens=3))[0]) == 1


def test_hf_with_a_processor_shows_each_prompt_its_own_image(tmp_path):
    from PIL import Image

    from sparkrl.tiny_vl.model import build_tiny_vl_model, build_vl_processor

    processor = build_vl_processor()
    build_tiny_vl_model(processor, seed=0).save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    paths = []
    for name, colour in (("red", (215, 40, 40)), ("blue", (40, 80, 220))):
        Image.new("RGB", (28, 28), colour).save(tmp_path / f"{name}.png")
        paths.append(str(tmp_path / f"{name}.png"))
    prompts = [chat_messages("How many red shapes?", images=[p]) for p in paths] + [chat_messages("How many?")]
    backend = HFBackend.from_pretrained(str(tmp_path / "model"), batch_size=3)
    assert backend.processor is not None
    params = SamplingParams(max_new_tokens=3, top_logprobs=3)
    batched = [row[0] for row in backend.generate(prompts, params)]
    alone = [backend.generate([p], params)[0][0] for p in prompts]

    def first_step(generation):
        return sorted(generation.top_logprobs[0].values())

    # one image per row, matched to its own prompt: the batch (with a text-only row) gives
    # what each prompt gives alone, and the two images give different outputs
    assert [g.text for g in batched] == [g.text for g in alone]
    for together, single in zip(batched, alone):
        assert first_step(together) == pytest.approx(first_step(single), abs=1e-4)
    assert first_step(alone[0]) != pytest.approx(first_step(alone[1]), abs=1e-4)
    sampled = backend.generate(prompts, SamplingParams(n=2, temperature=1.0, max_new_tokens=3))
    assert [len(row) for row in sampled] == [2, 2, 2]


# --------------------------------------------------------------------------- vLLM


def test_vllm_without_the_package_is_a_clear_error():
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(BackendError, match="vllm.*not installed"):
            VLLMBackend("some/model")
    else:
        pytest.skip("vllm is installed here")


def test_vllm_completion_conversion():
    step = {5: SimpleNamespace(decoded_token="Yes", logprob=-0.1), 6: SimpleNamespace(decoded_token="No", logprob=-2.4)}
    completion = SimpleNamespace(text="Yes", token_ids=[5], logprobs=[step], finish_reason="stop")
    gen = vllm_generation(completion)
    assert gen.tokens == ("Yes",) and gen.top_logprobs == ({"Yes": -0.1, "No": -2.4},)
    plain = vllm_generation(SimpleNamespace(text="x", token_ids=[1], logprobs=None, finish_reason="length"))
    assert plain == Generation("x", finish_reason="length")


def test_vllm_backend_passes_engine_settings_and_converts_outputs(fake_vllm):
    fake = fake_vllm(lambda messages: "so \\boxed{" + messages[-1]["content"] + "}")
    engine = VLLMEngineConfig(tensor_parallel_size=2, gpu_memory_utilization=0.5, max_model_len=4096,
                              dtype="bfloat16", seed=3)
    backend = VLLMBackend("some/model", engine)
    assert fake.llm_kwargs == [{"model": "some/model", "tensor_parallel_size": 2, "gpu_memory_utilization": 0.5,
                                "max_model_len": 4096, "dtype": "bfloat16", "seed": 3}]
    out = backend.generate([chat_messages("a"), chat_messages("b")],
                           SamplingParams(n=2, temperature=0.5, max_new_tokens=9, seed=4, top_logprobs=2))
    assert fake.sampling == [{"n": 2, "temperature": 0.5, "top_p": 1.0, "max_tokens": 9, "seed": 4, "logprobs": 2}]
    expected = [Generation(f"so \\boxed{{{q}}}", ("Yes",), ({"Yes": -0.25, "No": -1.5},), "stop") for q in "ab"]
    assert out == [[expected[0]] * 2, [expected[1]] * 2]


def test_vllm_engine_defaults_leave_max_model_len_to_vllm(fake_vllm):
    fake = fake_vllm(lambda messages: "")
    VLLMBackend("m")
    assert fake.llm_kwargs == [{"model": "m", "tensor_parallel_size": 1, "gpu_memory_utilization": 0.9,
                                "dtype": "auto", "seed": 0}]


@pytest.mark.parametrize("kwargs", [{"tensor_parallel_size": 0}, {"gpu_memory_utilization": 0.0},
                                    {"gpu_memory_utilization": 1.5}, {"max_model_len": 0}, {"dtype": ""}])
def test_vllm_engine_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        VLLMEngineConfig(**kwargs)


# --------------------------------------------------------------------------- OpenAI-compatible

Reply = tuple[int, dict, float]  # status, JSON body, seconds to wait before answering


class _Server:
    """A local chat-completions server whose answers come from `script(call_number, request)`."""

    def __init__(self, script: Callable[[int, dict], Reply]) -> None:
        self.calls: list[dict] = []
        self.headers: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.release = threading.Event()
        lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    number = len(server.calls)
                    server.calls.append(body)
                    server.headers.append(dict(self.headers))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                status, payload, delay = script(number, body)
                server.release.wait(delay)
                with lock:
                    server.in_flight -= 1
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (time limit)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[int, dict], Reply]], _Server]]:
    servers: list[_Server] = []

    def start(script: Callable[[int, dict], Reply]) -> _Server:
        servers.append(_Server(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def echo(number: int, request: dict) -> Reply:
    """n choices echoing the user message, with token log-probabilities when asked."""
    text = request["messages"][-1]["content"]
    choices = []
    for i in range(request.get("n", 1)):
        choice = {"index": i, "message": {"role": "assistant", "content": f"{text}#{i}"}, "finish_reason": "stop"}
        if request.get("logprobs"):
            choice["logprobs"] = {"content": [
                {"token": f"{text}#{i}", "logprob": -0.5, "top_logprobs": [{"token": "other", "logprob": -1.5}]}
            ]}
        choices.append(choice)
    return 200, {"choices": choices}, 0.0


def client(url: str, **kwargs) -> OpenAIBackend:
    return OpenAIBackend(EndpointConfig(base_url=url, model="m", backoff_s=0.01, **kwargs))


def test_openai_roundtrip_order_payload_and_logprobs(serve):
    server = serve(echo)
    backend = client(server.url, api_key="secret")
    prompts = [chat_messages(f"q{i}") for i in range(5)]
    out = backend.generate(prompts, SamplingParams(n=2, temperature=0.7, max_new_tokens=9, seed=3, top_logprobs=1))
    assert [[g.text for g in row] for row in out] == [[f"q{i}#0", f"q{i}#1"] for i in range(5)]
    assert out[0][0].top_logprobs == ({"other": -1.5, "q0#0": -0.5},)
    call = server.calls[0]
    assert (call["model"], call["n"], call["temperature"], call["max_tokens"], call["seed"]) == ("m", 2, 0.7, 9, 3)
    assert call["logprobs"] is True and call["top_logprobs"] == 1
    assert server.headers[0]["Authorization"] == "Bearer secret"


def test_openai_concurrency_limit_is_reached_and_never_exceeded(serve):
    gate = threading.Barrier(3, timeout=5)

    def held(number: int, request: dict) -> Reply:
        # Each request waits until three are in flight together. A client that sends fewer at
        # once breaks the barrier (after 5 s, then at once) and fails the assertion below.
        with contextlib.suppress(threading.BrokenBarrierError):
            gate.wait()
        status, payload, _ = echo(number, request)
        return status, payload, 0.05

    server = serve(held)
    out = client(server.url, max_concurrency=3).generate([chat_messages(f"q{i}") for i in range(9)], SamplingParams())
    assert [row[0].text for row in out] == [f"q{i}#0" for i in range(9)]
    assert server.max_in_flight == 3 and not gate.broken


def test_openai_retries_a_server_error_then_succeeds(serve):
    server = serve(lambda number, request: (500, {"error": "boom"}, 0.0) if number == 0 else echo(number, request))
    out = client(server.url, retries=2).generate([chat_messages("q")], SamplingParams())
    assert out[0][0].text == "q#0"
    assert len(server.calls) == 2


def test_openai_gives_up_after_retries_with_a_clear_error(serve):
    server = serve(lambda number, request: (503, {"error": "overloaded"}, 0.0))
    with pytest.raises(BackendError, match=r"giving up after 3 attempts.*HTTP 503.*overloaded"):
        client(server.url, retries=2).generate([chat_messages("q")], SamplingParams())
    assert len(server.calls) == 3


def test_openai_client_errors_are_not_retried(serve):
    server = serve(lambda number, request: (400, {"error": "bad model"}, 0.0))
    with pytest.raises(BackendError, match="HTTP 400.*bad model"):
        client(server.url, retries=3).generate([chat_messages("q")], SamplingParams())
    assert len(server.calls) == 1


def test_openai_time_limit(serve):
    server = serve(lambda number, request: (200, echo(number, request)[1], 5.0))
    with pytest.raises(BackendError, match="time limit of 0.2s"):
        client(server.url, retries=1, timeout_s=0.2).generate([chat_messages("q")], SamplingParams())
    assert len(server.calls) == 2


@contextlib.contextmanager
def trickling_server(gap_s: float, headers_too: bool) -> Iterator[str]:
    """A loopback server that answers a valid chat response one byte every `gap_s` seconds
    (status line and headers included when `headers_too`), so that no single read waits
    long. It stops when the client hangs up or the server closes."""
    stop = threading.Event()
    payload = json.dumps(echo(0, {"messages": [{"content": "q"}]})[1]).encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n".encode()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server naming)
            self.rfile.read(int(self.headers["Content-Length"]))
            slow = head + payload if headers_too else payload
            try:
                if not headers_too:
                    self.wfile.write(head)
                for byte in slow:
                    if stop.wait(gap_s):
                        return
                    self.wfile.write(bytes([byte]))
            except OSError:
                pass  # the client hung up

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize("headers_too", [False, True])
def test_openai_time_limit_bounds_the_whole_request_not_each_read(headers_too):
    with trickling_server(gap_s=0.01, headers_too=headers_too) as url:
        # The whole answer takes 1 to 2 s, yet no read waits more than 0.01 s.
        start = time.monotonic()
        with pytest.raises(BackendError, match="time limit of 0.3s"):
            client(url, retries=1, timeout_s=0.3).generate([chat_messages("q")], SamplingParams())
        assert time.monotonic() - start < 2 * 0.3 + 0.01 + 0.5  # two attempts, the backoff, a margin
        # Given the time, the same server's answer is read whole.
        (row,) = client(url, retries=0, timeout_s=60).generate([chat_messages("q")], SamplingParams())
        assert row[0].text == "q#0"


def test_openai_connection_refused_is_reported(serve):
    server = serve(echo)
    url = server.url
    server.close()
    with pytest.raises(BackendError, match="connection error"):
        client(url, retries=1).generate([chat_messages("q")], SamplingParams())


def test_endpoint_config_url_and_validation():
    assert EndpointConfig("http://h:1", "m").url == "http://h:1/v1/chat/completions"
    assert EndpointConfig("http://h:1/v1/", "m").url == "http://h:1/v1/chat/completions"
    with pytest.raises(ValueError):
        EndpointConfig("h:1", "m")
    with pytest.raises(ValueError):
        EndpointConfig("http://h", "m", max_concurrency=0)


def test_parse_chat_response_rejects_responses_without_choices():
    with pytest.raises(BackendError, match="no choices"):
        parse_chat_response({"error": "x"})
    assert parse_chat_response({"choices": [{"message": {"content": None}}]})[0].text == ""


def test_api_key_from_env(monkeypatch):
    monkeypatch.setenv("SPARKRL_TEST_KEY", "k")
    assert api_key_from_env("SPARKRL_TEST_KEY") == "k"
    assert api_key_from_env(None) is None
    monkeypatch.delenv("SPARKRL_TEST_KEY")
    with pytest.raises(BackendError, match="SPARKRL_TEST_KEY"):
        api_key_from_env("SPARKRL_TEST_KEY")
