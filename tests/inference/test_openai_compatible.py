"""The remote provider against a real HTTP server on loopback that answers as scripted.

The server's path prefix picks the scenario: `/ok/v1/...` streams a reply, `/status-500/v1/...`
answers 500, and so on. Tests against a live genai-service `/v1` live with the OpenAI API tests.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from genai_service.inference.base import (
    ChatChunk,
    ChatMessage,
    ChatRequest,
    ChatResult,
    ForcedTool,
    GenerationTimeout,
    JsonOutput,
    ModelNotReady,
    ModelOverloaded,
    PromptTooLong,
    ProviderError,
    SamplingParams,
    TokenLogprob,
    Tool,
    ToolCall,
    TopLogprob,
    Usage,
    collect,
)
from genai_service.inference.embeddings import RemoteEmbeddingModel
from genai_service.inference.openai_compatible.chat_model import OpenAICompatibleChatModel
from genai_service.inference.openai_compatible.endpoint import IDLE_CONNECTION_SECONDS
from genai_service.kit.errors import AppError, BadRequest
from genai_service.settings import ProviderSettings

API_KEY = "sk-test-secret-0123456789"
REQUEST = ChatRequest(
    messages=[ChatMessage(role="user", content="Say hello")],
    sampling=SamplingParams(max_tokens=7, temperature=0.0, stop=("END",), seed=3),
)
ERROR_BODIES: dict[str, tuple[int, dict[str, Any], dict[str, str]]] = {
    "status-500": (500, {"message": "internal details", "type": "server_error"}, {}),
    "status-503": (503, {"message": "warming up", "type": "server_error"}, {}),
    "status-429": (429, {"message": "slow down", "type": "rate_limit_error"}, {"Retry-After": "7"}),
    "status-400-context": (
        400,
        {
            "message": "This model's maximum context length is 8192 tokens.",
            "type": "invalid_request_error",
            "code": "context_length_exceeded",
        },
        {},
    ),
    "status-400": (
        400,
        {"message": "temperature must be at most 2", "type": "invalid_request_error"},
        {},
    ),
    "status-422": (422, {"message": "stop must be a list", "type": "invalid_request_error"}, {}),
    "status-401": (
        401,
        {"message": f"Incorrect API key provided: {API_KEY}", "type": "invalid_request_error"},
        {},
    ),
}


def sse(payload: dict[str, Any] | str) -> str:
    return f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n"


def chunk(content: str | None, finish: str | None = None) -> dict[str, Any]:
    delta = {"content": content} if content is not None else {}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "remote-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def loose_chunk(content: str | None, finish: str | None = None) -> dict[str, Any]:
    """A chunk as some servers send it: no `id` nor `created`, a vendor field of its own."""
    loose = {key: value for key, value in chunk(content, finish).items() if key != "created"}
    return {**loose, "id": None, "x_vendor_timing": {"decode_ms": 3}}


USAGE_CHUNK = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 0,
    "model": "remote-model",
    "choices": [],
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
}


def tool_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        **chunk(None, finish),
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def logprob_chunk(text: str, logprob: float) -> dict[str, Any]:
    entry = {
        "token": text,
        "logprob": logprob,
        "bytes": list(text.encode()),
        "top_logprobs": [{"token": text, "logprob": logprob, "bytes": list(text.encode())}],
    }
    base = chunk(text)
    base["choices"][0]["logprobs"] = {"content": [entry], "refusal": None}
    return base


CALL = {
    "index": 0,
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": ""},
}
STREAMS: dict[str, list[dict[str, Any] | str]] = {
    "tools": [
        tool_chunk({"role": "assistant", "tool_calls": [CALL]}),
        tool_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
        tool_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        tool_chunk({}, "tool_calls"),
        USAGE_CHUNK,
        "[DONE]",
    ],
    "bad-arguments": [
        tool_chunk(
            {"tool_calls": [{**CALL, "function": {"name": "get_weather", "arguments": "{"}}]}
        ),
        tool_chunk({}, "tool_calls"),
        "[DONE]",
    ],
    "logprobs": [logprob_chunk("Hi", -0.5), chunk(None, "stop"), USAGE_CHUNK, "[DONE]"],
    "not-json": [chunk("Sure! {"), chunk(None, "stop"), USAGE_CHUNK, "[DONE]"],
    "ok": [chunk("Hel"), chunk("lo"), chunk(None, "stop"), USAGE_CHUNK, "[DONE]"],
    "loose": [loose_chunk("Hel"), loose_chunk("lo"), loose_chunk(None, "stop"), "[DONE]"],
    "slow": [chunk("late", "stop"), "[DONE]"],
    "no-usage": [chunk("abcdefgh"), chunk(None, "length"), "[DONE]"],
    "no-finish": [chunk("Hel"), "[DONE]"],
    "cut": [chunk("Hel")],  # and then the connection breaks
    "error-event": [chunk("Hel"), {"error": {"message": "overloaded mid-stream", "code": 503}}],
}
FLAKY = "flaky-"
"""A scenario `flaky-<tag>` answers 503 (asking for a retry after 10 ms) to the first
`FLAKY_FAILURES` requests of its tag, then as `ok`."""
FLAKY_FAILURES = 2


def folded_chat(events: list[dict[str, Any] | str]) -> dict[str, Any]:
    """A scenario's reply in one body, as a server answers a request without `stream`."""
    chunks = [event for event in events if isinstance(event, dict)]
    content = ""
    calls: dict[int, dict[str, Any]] = {}
    logprobs: list[dict[str, Any]] = []
    finish = None
    for event in chunks:
        for choice in event["choices"]:
            delta = choice["delta"]
            content += delta.get("content") or ""
            for call in delta.get("tool_calls") or ():
                function = call.get("function") or {}
                whole = calls.setdefault(
                    call["index"],
                    {"id": call.get("id"), "type": "function", "function": {"arguments": ""}},
                )
                whole["function"].setdefault("name", function.get("name"))
                whole["function"]["arguments"] += function.get("arguments") or ""
            logprobs += (choice.get("logprobs") or {}).get("content") or []
            finish = choice.get("finish_reason") or finish
    message: dict[str, Any] = {"role": "assistant", "content": content or None}
    if calls:
        message["tool_calls"] = [calls[index] for index in sorted(calls)]
    usage = next((event["usage"] for event in chunks if event.get("usage")), None)
    first = {key: value for key, value in chunks[0].items() if key not in {"choices", "usage"}}
    return {
        **first,
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish,
                "logprobs": {"content": logprobs} if logprobs else None,
            }
        ],
        **({"usage": usage} if usage else {}),
    }


def folded_completion(events: list[dict[str, Any] | str]) -> dict[str, Any]:
    """A legacy completion's stream in one body."""
    chunks = [event for event in events if isinstance(event, dict)]
    choices = [choice for event in chunks for choice in event["choices"]]
    return {
        **{key: value for key, value in chunks[0].items() if key != "choices"},
        "choices": [
            {
                "index": 0,
                "text": "".join(choice["text"] for choice in choices),
                "finish_reason": choices[-1]["finish_reason"],
                "logprobs": choices[0]["logprobs"],
            }
        ],
        "usage": next(event["usage"] for event in chunks if event.get("usage")),
    }


@dataclass
class Recorded:
    bodies: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)
    client_ports: list[int] = field(default_factory=list)
    """Of each chat request: the port it came from, one per connection."""
    scenarios: list[str] = field(default_factory=list)
    """Of each chat request: its scenario."""

    def count(self, scenario: str) -> int:
        return self.scenarios.count(scenario)


def scripted_app(recorded: Recorded) -> Starlette:
    async def chat(request: Request) -> Response:
        body = await request.json()
        recorded.bodies.append(body)
        recorded.authorizations.append(request.headers.get("authorization", ""))
        recorded.client_ports.append(request.client.port if request.client else 0)
        scenario = request.path_params["scenario"]
        recorded.scenarios.append(scenario)
        if scenario.startswith(FLAKY):
            if recorded.count(scenario) <= FLAKY_FAILURES:
                error = {"message": "warming up", "type": "server_error"}
                return JSONResponse(
                    {"error": error}, status_code=503, headers={"retry-after-ms": "10"}
                )
            scenario = "ok"
        if scenario in ERROR_BODIES:
            status, error, headers = ERROR_BODIES[scenario]
            return JSONResponse({"error": error}, status_code=status, headers=headers)
        if scenario == "slow":
            await asyncio.sleep(1.0)
        events = STREAMS[scenario]
        if not body.get("stream"):
            return JSONResponse(folded_chat(events))

        async def body_stream() -> AsyncIterator[str]:
            for event in events:
                yield sse(event)
            if scenario == "cut":
                raise ConnectionAbortedError("the server dies mid-stream")

        return StreamingResponse(body_stream(), media_type="text/event-stream")

    async def embeddings(request: Request) -> Response:
        body = await request.json()
        recorded.bodies.append(body)
        scenario = request.path_params["scenario"]
        if scenario in ERROR_BODIES:
            status, error, headers = ERROR_BODIES[scenario]
            return JSONResponse({"error": error}, status_code=status, headers=headers)
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(text)), float(i), 1.0]}
            for i, text in enumerate(body["input"])
        ]
        return JSONResponse(
            {
                "object": "list",
                "data": data[::-1],  # out of order on purpose: the index decides
                "model": body["model"],
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            }
        )

    async def completions(request: Request) -> Response:
        body = await request.json()
        recorded.bodies.append(body)
        events: list[dict[str, Any] | str] = [
            {
                "id": "cmpl-1",
                "object": "text_completion",
                "created": 0,
                "model": "remote-model",
                "choices": [
                    {
                        "index": 0,
                        "text": " Paris",
                        "finish_reason": None,
                        "logprobs": {
                            "tokens": [" Paris"],
                            "token_logprobs": [-0.1],
                            "top_logprobs": [{" Paris": -0.1}],
                            "text_offset": [0],
                        },
                    }
                ],
            },
            {
                "id": "cmpl-1",
                "object": "text_completion",
                "created": 0,
                "model": "remote-model",
                "choices": [{"index": 0, "text": "", "finish_reason": "length", "logprobs": None}],
            },
            {**USAGE_CHUNK, "object": "text_completion"},
            "[DONE]",
        ]
        if not body.get("stream"):
            return JSONResponse(folded_completion(events))

        async def body_stream() -> AsyncIterator[str]:
            for event in events:
                yield sse(event)

        return StreamingResponse(body_stream(), media_type="text/event-stream")

    return Starlette(
        routes=[
            Route("/{scenario}/v1/chat/completions", chat, methods=["POST"]),
            Route("/{scenario}/v1/completions", completions, methods=["POST"]),
            Route("/{scenario}/v1/embeddings", embeddings, methods=["POST"]),
        ]
    )


@dataclass
class ScriptedServer:
    base: str
    recorded: Recorded

    def url(self, scenario: str) -> str:
        return f"{self.base}/{scenario}/v1"


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    recorded = Recorded()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        scripted_app(recorded), log_level="critical", lifespan="off", ws="none", http="h11"
    )
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(target=uvicorn_server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not uvicorn_server.started:
        thread.join(0.01)
        assert thread.is_alive()
    try:
        yield ScriptedServer(f"http://127.0.0.1:{sock.getsockname()[1]}", recorded)
    finally:
        uvicorn_server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def closed_port() -> Iterator[str]:
    """A loopback port bound but not listening: connecting is refused (and nobody takes it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


def provider(base_url: str, **overrides: Any) -> ProviderSettings:
    values: dict[str, Any] = {
        "kind": "openai_compatible",
        "base_url": base_url,
        "api_key": SecretStr(API_KEY),
        "model": "remote-model",
        "max_retries": 0,
        "timeout": 5,
    }
    return ProviderSettings(**(values | overrides))


Way = Callable[[OpenAICompatibleChatModel, ChatRequest], Awaitable[ChatResult]]


async def streamed(model: OpenAICompatibleChatModel, request: ChatRequest) -> ChatResult:
    async with aclosing(model.stream(request)) as chunks:
        return await collect(chunks)


async def completed(model: OpenAICompatibleChatModel, request: ChatRequest) -> ChatResult:
    return await model.complete(request)


BOTH_WAYS = pytest.mark.parametrize("way", [streamed, completed], ids=["stream", "complete"])
"""A reply asked for as a stream, and in one body (the server answers each its way)."""


async def drain(chunks: AsyncIterator[ChatChunk], *, into: list[str]) -> None:
    async for piece in chunks:
        into.append(piece.text)


async def started_chat(base_url: str, **overrides: Any) -> OpenAICompatibleChatModel:
    model = OpenAICompatibleChatModel("our-name", provider(base_url, **overrides))
    await model.start()
    return model


async def test_an_idle_connection_is_not_reused_once_the_server_may_close_it(
    server: ScriptedServer,
) -> None:
    """The server here (uvicorn, as vLLM's) closes a connection idle for 5 s; a request sent on
    it as it closes fails. After `IDLE_CONNECTION_SECONDS` idle, the next request goes over a
    new connection."""
    model = await started_chat(server.url("ok"))
    try:
        await model.complete(REQUEST)
        await model.complete(REQUEST)
        await asyncio.sleep(IDLE_CONNECTION_SECONDS + 0.3)
        await model.complete(REQUEST)
    finally:
        await model.close()
    first, second, after_idle = server.recorded.client_ports[-3:]
    assert second == first  # kept while it is fresh
    assert after_idle != first


async def test_stream_yields_text_then_finish_and_the_servers_usage(
    server: ScriptedServer,
) -> None:
    model = await started_chat(server.url("ok"))
    try:
        chunks = [c async for c in model.stream(REQUEST)]
        result = await model.complete(REQUEST)
    finally:
        await model.close()
    assert chunks == [
        ChatChunk(text="Hel"),
        ChatChunk(text="lo"),
        ChatChunk(text="", finish_reason="stop", usage=Usage(prompt_tokens=5, completion_tokens=2)),
    ]
    assert (result.text, result.finish_reason, result.usage.total_tokens) == ("Hello", "stop", 7)
    streamed, completed = server.recorded.bodies[-2:]
    assert streamed["stream"] is True
    assert streamed["stream_options"] == {"include_usage": True}
    assert "stream" not in completed  # the whole reply at once: one body, not a stream
    assert "stream_options" not in completed
    for sent in (streamed, completed):
        assert sent["model"] == "remote-model"
        assert sent["messages"] == [{"role": "user", "content": "Say hello"}]
        assert (sent["max_tokens"], sent["temperature"], sent["stop"], sent["seed"]) == (
            7,
            0.0,
            ["END"],
            3,
        )
    assert server.recorded.authorizations[-2:] == [f"Bearer {API_KEY}"] * 2


@BOTH_WAYS
async def test_chunks_off_the_openai_schema_are_still_read(
    server: ScriptedServer, way: Way
) -> None:
    """Replies are validated by pydantic's compiled validators first; a chunk those reject is
    read the SDK's lenient way, so a server that works with the SDK works here."""
    model = await started_chat(server.url("loose"))
    try:
        result = await way(model, REQUEST)
    finally:
        await model.close()
    assert (result.text, result.finish_reason) == ("Hello", "stop")


@BOTH_WAYS
async def test_length_finish_and_estimated_usage_when_the_server_reports_none(
    server: ScriptedServer, way: Way
) -> None:
    model = await started_chat(server.url("no-usage"))
    try:
        result = await way(model, REQUEST)
    finally:
        await model.close()
    assert result.text == "abcdefgh"
    assert result.finish_reason == "length"
    assert result.usage == Usage(
        prompt_tokens=model.count_tokens(REQUEST.messages), completion_tokens=2
    )


@BOTH_WAYS
async def test_a_reply_without_finish_reason_is_a_provider_error(
    server: ScriptedServer, way: Way
) -> None:
    model = await started_chat(server.url("no-finish"))
    try:
        with pytest.raises(ProviderError, match="finish reason"):
            await way(model, REQUEST)
    finally:
        await model.close()


async def test_keyless_servers_never_get_the_environments_openai_key(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")
    model = await started_chat(server.url("ok"), api_key=None)
    try:
        await model.complete(REQUEST)
    finally:
        await model.close()
    assert server.recorded.authorizations[-1] == "Bearer unused"


@pytest.mark.parametrize(
    ("scenario", "error", "detail_has", "detail_lacks"),
    [
        ("status-500", ProviderError, "500", "internal details"),
        ("status-503", ProviderError, "503", "warming up"),
        ("status-429", ModelOverloaded, "overloaded", ""),
        ("status-400-context", PromptTooLong, "maximum context length is 8192", ""),
        ("status-400", BadRequest, "temperature must be at most 2", ""),
        ("status-422", BadRequest, "stop must be a list", ""),
        ("status-401", ProviderError, "credentials", API_KEY),
    ],
)
async def test_upstream_status_codes_map_to_our_errors(
    server: ScriptedServer,
    scenario: str,
    error: type[AppError],
    detail_has: str,
    detail_lacks: str,
) -> None:
    model = await started_chat(server.url(scenario))
    try:
        with pytest.raises(AppError) as streamed:
            [c async for c in model.stream(REQUEST)]
        with pytest.raises(AppError) as completed:
            await model.complete(REQUEST)
    finally:
        await model.close()
    for raised in (streamed.value, completed.value):
        assert type(raised) is error
        assert detail_has in raised.detail
        if detail_lacks:
            assert detail_lacks not in raised.detail
    if scenario == "status-429":
        assert streamed.value.headers == {"Retry-After": "7"}


@BOTH_WAYS
async def test_a_failure_the_openai_sdk_retries_is_retried(
    server: ScriptedServer, way: Way
) -> None:
    """Up to `max_retries` times, after the pause the server asks for (`retry-after-ms`)."""
    scenario = f"{FLAKY}{way.__name__}"
    model = await started_chat(server.url(scenario), max_retries=FLAKY_FAILURES)
    try:
        result = await way(model, REQUEST)
    finally:
        await model.close()
    assert (result.text, result.finish_reason) == ("Hello", "stop")
    assert server.recorded.count(scenario) == FLAKY_FAILURES + 1


@BOTH_WAYS
async def test_the_last_failure_is_the_answer_when_the_retries_run_out(
    server: ScriptedServer, way: Way
) -> None:
    scenario = f"{FLAKY}{way.__name__}-short"
    model = await started_chat(server.url(scenario), max_retries=FLAKY_FAILURES - 1)
    try:
        with pytest.raises(ProviderError, match="503"):
            await way(model, REQUEST)
    finally:
        await model.close()
    assert server.recorded.count(scenario) == FLAKY_FAILURES


@BOTH_WAYS
async def test_a_client_mistake_is_not_retried(server: ScriptedServer, way: Way) -> None:
    before = server.recorded.count("status-400")
    model = await started_chat(server.url("status-400"), max_retries=3)
    try:
        with pytest.raises(BadRequest):
            await way(model, REQUEST)
    finally:
        await model.close()
    assert server.recorded.count("status-400") == before + 1


async def test_an_error_sent_as_an_event_of_the_stream_fails_it_after_its_chunks(
    server: ScriptedServer,
) -> None:
    model = await started_chat(server.url("error-event"))
    received: list[str] = []
    try:
        with pytest.raises(ProviderError, match="overloaded mid-stream"):
            await drain(model.stream(REQUEST), into=received)
    finally:
        await model.close()
    assert received == ["Hel"]


async def test_connection_refused_is_a_provider_error(closed_port: str) -> None:
    model = await started_chat(closed_port)
    try:
        assert model.ready  # a remote that is down does not fail start-up
        with pytest.raises(ProviderError, match="cannot reach"):
            [c async for c in model.stream(REQUEST)]
        with pytest.raises(ProviderError):
            await model.complete(REQUEST)
    finally:
        await model.close()


async def test_a_slow_server_is_a_generation_timeout(server: ScriptedServer) -> None:
    model = await started_chat(server.url("slow"), timeout=0.2)
    try:
        with pytest.raises(GenerationTimeout):
            await model.complete(REQUEST)
    finally:
        await model.close()


async def test_a_stream_cut_midway_fails_after_the_chunks_already_sent(
    server: ScriptedServer,
) -> None:
    model = await started_chat(server.url("cut"))
    received: list[str] = []
    try:
        with pytest.raises(ProviderError):
            await drain(model.stream(REQUEST), into=received)
    finally:
        await model.close()
    assert received == ["Hel"]


async def test_lifecycle_and_token_estimate(closed_port: str) -> None:
    model = OpenAICompatibleChatModel("our-name", provider(closed_port, context_window=32768))
    assert not model.ready
    with pytest.raises(ModelNotReady):
        await model.complete(REQUEST)
    await model.start()
    assert model.ready
    await model.close()
    assert not model.ready
    assert model.context_window == 32768
    # ceil(chars / 4) per message + 4 per message + 3 for the reply's priming
    messages = [
        ChatMessage(role="system", content="x" * 40),
        ChatMessage(role="user", content="hi"),
    ]
    assert model.count_tokens(messages) == (10 + 4) + (1 + 4) + 3


async def test_remote_embeddings_learn_the_dimension_and_keep_input_order(
    server: ScriptedServer,
) -> None:
    model = RemoteEmbeddingModel("our-embedder", provider(server.url("ok")))
    with pytest.raises(ModelNotReady):
        model.dimension  # noqa: B018 - the property raises
    await model.start()
    try:
        assert model.dimension == 3
        vectors = await model.embed(["a", "bbb", "cc"])
    finally:
        await model.close()
    assert vectors == [[1.0, 0.0, 1.0], [3.0, 1.0, 1.0], [2.0, 2.0, 1.0]]
    assert server.recorded.bodies[-1]["encoding_format"] == "float"
    assert server.recorded.bodies[-1]["model"] == "remote-model"


async def test_remote_embeddings_start_when_the_remote_is_down(closed_port: str) -> None:
    model = RemoteEmbeddingModel("our-embedder", provider(closed_port))
    await model.start()
    try:
        assert model.ready
        with pytest.raises(ModelNotReady):
            model.dimension  # noqa: B018 - the property raises
        with pytest.raises(ProviderError):
            await model.embed(["hello"])
    finally:
        await model.close()


async def test_remote_embedding_errors_are_mapped(server: ScriptedServer) -> None:
    model = RemoteEmbeddingModel("our-embedder", provider(server.url("status-500")))
    await model.start()
    try:
        with pytest.raises(ProviderError):
            await model.embed(["hello"])
    finally:
        await model.close()


async def test_remote_embeddings_estimate_tokens_and_send_only_the_window(
    server: ScriptedServer,
) -> None:
    """The window is the provider's `context_window`; tokens are estimated as words and
    punctuation marks, and a longer text is cut after the window's last one before it is sent."""
    model = RemoteEmbeddingModel("our-embedder", provider(server.url("ok"), context_window=256))
    await model.start()
    try:
        assert model.max_input_tokens == 256
        words = [f"w{index}" for index in range(300)]
        long = " ".join(words)
        counts = await model.count_tokens(["Hello, world!", "", long, " ".join(words[:256])])
        assert counts == [4, 0, 257, 256]
        await model.embed(["short one", long])
    finally:
        await model.close()
    assert server.recorded.bodies[-1]["input"] == ["short one", " ".join(words[:256])]


WEATHER = Tool(
    name="get_weather",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
    description="The weather.",
)


@BOTH_WAYS
async def test_every_supported_field_is_passed_through(server: ScriptedServer, way: Way) -> None:
    request = ChatRequest(
        messages=[
            ChatMessage("user", "Weather?"),
            ChatMessage("assistant", "", tool_calls=(ToolCall("call_0", "get_weather", "{}"),)),
            ChatMessage("tool", "sunny", tool_call_id="call_0"),
        ],
        sampling=SamplingParams(
            max_tokens=9,
            temperature=0.5,
            top_p=0.9,
            presence_penalty=0.1,
            frequency_penalty=0.2,
            logit_bias=((15, -3.0),),
            logprobs=2,
            top_k=20,
            min_p=0.05,
            repetition_penalty=1.1,
        ),
        response_format=JsonOutput({"type": "object"}, name="thing"),
        tools=(WEATHER,),
        tool_choice=ForcedTool("get_weather"),
        parallel_tool_calls=False,
    )
    model = await started_chat(server.url("ok"))
    try:
        with pytest.raises(ProviderError):  # "Hello" is no JSON object: never returned as one
            await way(model, request)
    finally:
        await model.close()
    sent = server.recorded.bodies[-1]
    assert sent["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_0",
                "type": "function",
                "function": {"name": "get_weather", "arguments": "{}"},
            }
        ],
    }
    assert sent["messages"][2] == {"role": "tool", "content": "sunny", "tool_call_id": "call_0"}
    assert {
        key: sent[key]
        for key in (
            "top_p",
            "presence_penalty",
            "frequency_penalty",
            "logit_bias",
            "logprobs",
            "top_logprobs",
            "top_k",
            "min_p",
            "repetition_penalty",
            "tool_choice",
            "parallel_tool_calls",
            "response_format",
        )
    } == {
        "top_p": 0.9,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
        "logit_bias": {"15": -3.0},
        "logprobs": True,
        "top_logprobs": 2,
        "top_k": 20,
        "min_p": 0.05,
        "repetition_penalty": 1.1,
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "thing", "schema": {"type": "object"}, "strict": True},
        },
    }
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather.",
                "parameters": dict(WEATHER.parameters),
            },
        }
    ]


async def test_defaults_are_not_sent(server: ScriptedServer) -> None:
    model = await started_chat(server.url("ok"))
    try:
        await model.complete(REQUEST)
    finally:
        await model.close()
    sent = server.recorded.bodies[-1]
    for name in (
        "presence_penalty",
        "logit_bias",
        "logprobs",
        "tools",
        "response_format",
        "top_k",
        "min_p",
        "repetition_penalty",
    ):
        assert name not in sent


@BOTH_WAYS
async def test_tool_calls_come_back_as_calls(server: ScriptedServer, way: Way) -> None:
    request = ChatRequest([ChatMessage("user", "Weather?")], tools=(WEATHER,))
    model = await started_chat(server.url("tools"))
    try:
        result = await way(model, request)
    finally:
        await model.close()
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls == (ToolCall("call_1", "get_weather", '{"city": "Paris"}'),)


@BOTH_WAYS
async def test_tool_arguments_that_are_not_json_are_an_error(
    server: ScriptedServer, way: Way
) -> None:
    model = await started_chat(server.url("bad-arguments"))
    try:
        with pytest.raises(ProviderError, match="not valid JSON"):
            await way(model, ChatRequest([ChatMessage("user", "x")], tools=(WEATHER,)))
    finally:
        await model.close()


@BOTH_WAYS
async def test_logprobs_come_back(server: ScriptedServer, way: Way) -> None:
    model = await started_chat(server.url("logprobs"))
    try:
        result = await way(
            model, ChatRequest([ChatMessage("user", "x")], SamplingParams(logprobs=1))
        )
    finally:
        await model.close()
    assert result.logprobs == (TokenLogprob("Hi", b"Hi", -0.5, (TopLogprob("Hi", b"Hi", -0.5),)),)


@BOTH_WAYS
async def test_a_raw_prompt_goes_to_the_legacy_completions(
    server: ScriptedServer, way: Way
) -> None:
    model = await started_chat(server.url("ok"))
    try:
        result = await way(
            model,
            ChatRequest((), SamplingParams(max_tokens=1, logprobs=1), prompt="The capital is"),
        )
    finally:
        await model.close()
    sent = server.recorded.bodies[-1]
    assert sent["prompt"] == "The capital is"
    assert sent["logprobs"] == 1
    assert "top_logprobs" not in sent
    assert (result.text, result.finish_reason) == (" Paris", "length")
    assert result.logprobs == (
        TokenLogprob(" Paris", b" Paris", -0.1, (TopLogprob(" Paris", b" Paris", -0.1),)),
    )
