"""A `/v1` call that fails once its stream has begun ends the stream with an error event in
OpenAI's shape, which the official client raises, rather than stopping without a word."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest
from asgi_lifespan import LifespanManager
from openai.types.chat import ChatCompletionChunk

from genai_service.app import create_app
from genai_service.runtime import runtime_of
from genai_service.settings import Settings
from tests.conversations.support import FAILING_CHAT_MODEL, conversation_models, serve


@pytest.fixture
async def server_url(settings: Settings) -> AsyncIterator[str]:
    app = create_app(settings, models=conversation_models())
    async with LifespanManager(app, startup_timeout=60):
        await runtime_of(app).models.start()
        async for url in serve(app):
            yield url


async def drain(stream: openai.AsyncStream[ChatCompletionChunk], *, into: list[str]) -> None:
    async for chunk in stream:
        if chunk.choices:
            into.append(chunk.choices[0].delta.content or "")


async def test_a_provider_failing_mid_stream_is_raised_by_the_sdk(server_url: str) -> None:
    client = openai.AsyncOpenAI(base_url=f"{server_url}/v1", api_key="anonymous", max_retries=0)
    pieces: list[str] = []
    stream = await client.chat.completions.create(
        model=FAILING_CHAT_MODEL,
        messages=[{"role": "user", "content": "Tell me a story."}],
        stream=True,
    )
    with pytest.raises(openai.APIError) as raised:
        await drain(stream, into=pieces)
    assert "".join(pieces)  # what the model sent before it failed reached the client
    assert "the upstream server closed the connection" in raised.value.message
    assert isinstance(raised.value.body, dict)
    assert raised.value.body["type"] == "server_error"
    await client.close()
