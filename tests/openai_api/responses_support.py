"""Helpers for the `/v1/responses` tests over the fake model."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from genai_service.app import create_app
from genai_service.inference.base import ProviderError
from genai_service.inference.registry import ModelRegistry
from genai_service.runtime import runtime_of
from genai_service.settings import Settings
from tests.conftest import FAKE_CHAT_MODEL, FAKE_EMBEDDING_MODEL
from tests.fakes import FailingChatModel, FakeEmbeddingModel, ScriptedChatModel

FAILING_CHAT_MODEL = "failing-chat"
SMALL_CHAT_MODEL = "small-chat"
SMALL_CONTEXT = 40
FAILURE = "the upstream server closed the connection"

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def responses_models() -> ModelRegistry:
    """The fake model, one that fails after two chunks, and one with a tiny context window."""
    return ModelRegistry(
        chat={
            FAKE_CHAT_MODEL: ScriptedChatModel(),
            FAILING_CHAT_MODEL: FailingChatModel(ProviderError(FAILURE), after_chunks=2),
            SMALL_CHAT_MODEL: ScriptedChatModel(context_window=SMALL_CONTEXT),
        },
        embeddings={FAKE_EMBEDDING_MODEL: FakeEmbeddingModel()},
        default_chat=FAKE_CHAT_MODEL,
        default_embedding=FAKE_EMBEDDING_MODEL,
    )


async def started_app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings, models=responses_models())
    async with LifespanManager(application, startup_timeout=60):
        await runtime_of(application).models.start()
        yield application


def fake_model(app: FastAPI, name: str = FAKE_CHAT_MODEL) -> ScriptedChatModel:
    model = runtime_of(app).models.chat(name)
    assert isinstance(model, ScriptedChatModel)
    return model


async def create(client: httpx.AsyncClient, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """A response that must succeed."""
    response = await client.post("/v1/responses", json=body, **kwargs)
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


async def stream_events(
    client: httpx.AsyncClient, body: dict[str, Any], **kwargs: Any
) -> list[dict[str, Any]]:
    """The events of a streamed response, each checked against its SSE `event:` name."""
    events: list[dict[str, Any]] = []
    async with client.stream(
        "POST", "/v1/responses", json={**body, "stream": True}, **kwargs
    ) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        name = None
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                event = json.loads(line.removeprefix("data: "))
                assert event["type"] == name
                events.append(event)
    return events


def output_text(response: dict[str, Any]) -> str:
    """What the SDK's `response.output_text` gives: the text of every message item."""
    return "".join(
        part["text"]
        for item in response["output"]
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    )
