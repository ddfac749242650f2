"""The `openai_compatible` provider against a real third-party server: llama-cpp-python's own
OpenAI-compatible server (`python -m llama_cpp.server`) holding the SmolLM2 GGUF.

What it taught the provider, each pinned by a test here: it repeats a tool call's id and name in
every streamed delta; it ignores `tool_choice: "required"` and `stream_options` (no usage in
streams, so usage is estimated); it answers one vector per token for a model without pooling;
it refuses OpenAI's `json_schema` response format with a 500.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from genai_service.inference.base import (
    ChatMessage,
    ChatRequest,
    ForcedTool,
    GenerationTimeout,
    JsonOutput,
    PromptTooLong,
    ProviderError,
    SamplingParams,
    Tool,
)
from genai_service.inference.embeddings import RemoteEmbeddingModel
from genai_service.inference.openai_compatible.chat_model import OpenAICompatibleChatModel
from genai_service.inference.registry import FallbackChatModel
from genai_service.inference.structured_output import InvalidStructuredOutput
from genai_service.settings import ProviderSettings
from tests.llama_cpp_server import CONTEXT_TOKENS, MODEL_ALIAS, LlamaCppServer
from tests.polling import wait_until

pytestmark = pytest.mark.integration

HOST_KEY = "sk-model-host-7c1d0b9e"
EMBEDDING_DIMENSION = 576  # SmolLM2-135M's hidden size
GREEDY = SamplingParams(max_tokens=8, temperature=0.0)
QUESTION = ChatRequest(
    messages=[ChatMessage(role="user", content="What is the capital of France?")],
    sampling=GREEDY,
)
OVER_LONG = ChatRequest(
    messages=[ChatMessage(role="user", content="word " * (CONTEXT_TOKENS + 100))],
    sampling=GREEDY,
)
STORY = ChatRequest(
    messages=[ChatMessage(role="user", content="Write a long story about a dragon.")],
    sampling=SamplingParams(max_tokens=200, temperature=0.0),
)
WEATHER = Tool(
    name="get_weather",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaCppServer]:
    """One model host for the tests that leave it running: chat and pooled embeddings."""
    with LlamaCppServer(
        tmp_path_factory.mktemp("model-host"), embeddings=True, api_key=HOST_KEY
    ) as server:
        yield server


def provider(server: LlamaCppServer, **overrides: Any) -> ProviderSettings:
    values: dict[str, Any] = {
        "kind": "openai_compatible",
        "base_url": server.base_url,
        "api_key": SecretStr(HOST_KEY),
        "model": MODEL_ALIAS,
        "max_retries": 0,
        "timeout": 60,
    }
    return ProviderSettings(**(values | overrides))


async def started_chat(server: LlamaCppServer, **overrides: Any) -> OpenAICompatibleChatModel:
    model = OpenAICompatibleChatModel("smollm2-remote", provider(server, **overrides))
    await model.start()
    return model


async def test_chat_and_its_stream_give_the_same_greedy_reply(host: LlamaCppServer) -> None:
    model = await started_chat(host)
    try:
        result = await model.complete(QUESTION)
        chunks = [chunk async for chunk in model.stream(QUESTION)]
    finally:
        await model.close()
    assert result.finish_reason == "length"
    texts = [chunk.text for chunk in chunks if chunk.text]
    assert len(texts) > 1, "the reply arrives in pieces"
    assert "".join(texts) == result.text
    final = chunks[-1]
    assert final.finish_reason == "length"
    # A reply in one body carries the server's usage: cut at `max_tokens`, it counts them all.
    assert result.usage.completion_tokens == QUESTION.sampling.max_tokens
    assert result.usage.prompt_tokens > 0
    # The server sends no usage in streams (it ignores stream_options): the stream's is
    # estimated, from the characters sent and received.
    assert final.usage is not None
    assert final.usage.prompt_tokens == model.count_tokens(QUESTION.messages)
    assert 0 < final.usage.completion_tokens <= len(result.text)


async def test_a_forced_tool_call_arrives_as_one_call_with_its_name_once(
    host: LlamaCppServer,
) -> None:
    request = ChatRequest(
        messages=[ChatMessage(role="user", content="What is the weather in Paris?")],
        sampling=SamplingParams(max_tokens=40, temperature=0.0),
        tools=(WEATHER,),
        tool_choice=ForcedTool("get_weather"),
    )
    model = await started_chat(host)
    try:
        chunks = [chunk async for chunk in model.stream(request)]
        result = await model.complete(request)
    finally:
        await model.close()
    deltas = [delta for chunk in chunks for delta in chunk.tool_calls]
    assert [delta.name for delta in deltas if delta.name] == ["get_weather"]
    assert len({delta.id for delta in deltas if delta.id}) == 1
    assert result.finish_reason == "tool_calls"
    [call] = result.tool_calls
    assert call.name == "get_weather"
    assert isinstance(json.loads(call.arguments)["city"], str)


async def test_a_required_tool_call_the_server_ignores_is_an_error(host: LlamaCppServer) -> None:
    request = ChatRequest(
        messages=[ChatMessage(role="user", content="What is the weather in Paris?")],
        sampling=SamplingParams(max_tokens=12, temperature=0.0),
        tools=(WEATHER,),
        tool_choice="required",
    )
    model = await started_chat(host)
    try:
        with pytest.raises(InvalidStructuredOutput, match="required"):
            await model.complete(request)
    finally:
        await model.close()


async def test_json_mode_is_honoured_and_openais_json_schema_format_is_refused(
    host: LlamaCppServer,
) -> None:
    messages = [ChatMessage(role="user", content="Describe a cat as JSON.")]
    sampling = SamplingParams(max_tokens=60, temperature=0.0)
    model = await started_chat(host)
    try:
        json_mode = await model.complete(
            ChatRequest(messages, sampling, response_format=JsonOutput(schema=None))
        )
        with pytest.raises(ProviderError, match="status 500"):
            await model.complete(
                ChatRequest(
                    messages,
                    sampling,
                    response_format=JsonOutput(name="cat", schema={"type": "object"}),
                )
            )
    finally:
        await model.close()
    if json_mode.finish_reason == "stop":
        assert isinstance(json.loads(json_mode.text), dict)
    else:
        assert json_mode.text.lstrip().startswith("{")


async def test_a_raw_prompt_is_continued_and_its_usage_estimated(host: LlamaCppServer) -> None:
    request = ChatRequest(messages=[], prompt="The capital of France is", sampling=GREEDY)
    model = await started_chat(host)
    try:
        result = await model.complete(request)
    finally:
        await model.close()
    assert result.text
    assert result.usage.prompt_tokens > 0
    assert result.usage.completion_tokens > 0


async def test_an_over_long_prompt_ends_the_stream_without_a_reply(
    host: LlamaCppServer,
) -> None:
    """This server has answered a stream 200 before it finds the prompt too long: it then ends
    the stream without a word, or breaks the connection. A clear provider error, which a
    fallback chain passes to its next provider; conversation turns fit their prompt to
    `context_window` before sending it, so that setting should be the host's window.

    The broken stream leaves a dead connection in the client's pool: the next request needs
    the SDK's retry (`max_retries`, 2 by default) to reach the host."""
    model = await started_chat(host, max_retries=1)
    try:
        with pytest.raises(ProviderError, match=r"without a reply|broke off"):
            [chunk async for chunk in model.stream(OVER_LONG)]
        answered = await model.complete(QUESTION)
    finally:
        await model.close()
    assert answered.text, "the host still answers the next request"


async def test_an_over_long_prompt_in_one_body_is_prompt_too_long(host: LlamaCppServer) -> None:
    """Asked without `stream`, the server answers its 400 `context_length_exceeded`."""
    model = await started_chat(host)
    try:
        with pytest.raises(PromptTooLong, match="maximum context length"):
            await model.complete(OVER_LONG)
    finally:
        await model.close()


async def test_a_wrong_key_is_our_credentials_refused_and_never_shown(
    host: LlamaCppServer,
) -> None:
    model = await started_chat(host, api_key=SecretStr("sk-not-the-hosts-key"))
    try:
        with pytest.raises(ProviderError, match="refused our credentials") as raised:
            await model.complete(QUESTION)
    finally:
        await model.close()
    assert "sk-not" not in raised.value.detail


async def test_a_stalled_host_is_a_generation_timeout(host: LlamaCppServer) -> None:
    model = await started_chat(host, timeout=1.0)
    host.pause()
    try:
        with pytest.raises(GenerationTimeout, match="did not answer in time"):
            await model.complete(QUESTION)
    finally:
        host.resume()
        await model.close()


async def test_embeddings_from_the_model_host(host: LlamaCppServer) -> None:
    model = RemoteEmbeddingModel("smollm2-embeddings", provider(host))
    await model.start()
    try:
        assert model.dimension == EMBEDDING_DIMENSION  # learned from the probe at start
        first, second, again = await model.embed(["a red apple", "tax law", "a red apple"])
    finally:
        await model.close()
    assert len(first) == len(second) == EMBEDDING_DIMENSION
    assert first == again
    assert first != second


async def test_a_host_without_pooling_is_refused_not_mistaken_for_vectors(
    tmp_path: Path,
) -> None:
    with LlamaCppServer(tmp_path, embeddings=True, pooled=False, api_key=HOST_KEY) as unpooled:
        model = RemoteEmbeddingModel("smollm2-embeddings", provider(unpooled))
        await model.start()
        try:
            with pytest.raises(ProviderError, match="one vector per token"):
                await model.embed(["a red apple"])
        finally:
            await model.close()


async def test_a_host_killed_before_the_first_token_falls_back_to_the_next(
    tmp_path: Path, host: LlamaCppServer
) -> None:
    """The first host has the request in its socket (paused, it has read nothing) when it is
    killed: the connection is reset and the second host answers the same request."""
    with LlamaCppServer(tmp_path, api_key=HOST_KEY, name="first-host") as first:
        chain = FallbackChatModel(
            "smollm2",
            [
                OpenAICompatibleChatModel("smollm2", provider(first)),
                OpenAICompatibleChatModel("smollm2", provider(host)),
            ],
        )
        await chain.start()
        try:
            first.pause()
            stream = chain.stream(QUESTION)
            pending = asyncio.ensure_future(anext(stream))
            await wait_until(first.request_waiting)
            first.kill()
            chunks = [await pending, *[chunk async for chunk in stream]]
        finally:
            await chain.close()
    assert "".join(chunk.text for chunk in chunks)
    assert chunks[-1].finish_reason == "length"
    assert first.chat_requests_answered() == 0


async def test_a_host_killed_mid_reply_ends_the_stream_with_an_error_and_no_second_reply(
    tmp_path: Path, host: LlamaCppServer
) -> None:
    answered_before = host.chat_requests_answered()
    with LlamaCppServer(tmp_path, api_key=HOST_KEY, name="first-host") as first:
        chain = FallbackChatModel(
            "smollm2",
            [
                OpenAICompatibleChatModel("smollm2", provider(first)),
                OpenAICompatibleChatModel("smollm2", provider(host)),
            ],
        )
        await chain.start()
        received: list[str] = []

        async def read_until_it_breaks() -> None:
            async for chunk in chain.stream(STORY):
                received.append(chunk.text)
                if len(received) == 2:
                    first.kill()

        try:
            with pytest.raises(ProviderError, match="broke off during the reply"):
                await read_until_it_breaks()
        finally:
            await chain.close()
    assert len(received) >= 2
    assert host.chat_requests_answered() == answered_before, "the reply was not asked twice"
