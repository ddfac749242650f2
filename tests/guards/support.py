"""Helpers of the guard tests: a chat model that counts the calls in flight and holds them open
on a gate, the app that serves it beside the conversation tests' models, and limits rows."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from genai_service.app import create_app
from genai_service.guards.rate_limits.memory import InMemoryRateLimitStorage
from genai_service.guards.repository import LimitsRepository
from genai_service.inference.base import ChatChunk, ChatRequest
from genai_service.inference.registry import ModelRegistry
from genai_service.models.limits import CallerLimits
from genai_service.runtime import runtime_of
from genai_service.settings import Settings
from tests.conversations.support import conversation_models
from tests.fakes import ScriptedChatModel

GATED_CHAT_MODEL = "gated-chat"
RESET = re.compile(r"^(\d+ms|(\d+h)?(\d+m)?\d+(\.\d{1,3})?s)$")
"""OpenAI's (Go's) way of writing a duration: `250ms`, `1s`, `59.95s`, `6m0s`."""


class GatedChatModel(ScriptedChatModel):
    """A call sends its first chunk, then waits for `gate` before the rest. Counts the calls in
    flight and their peak where the model runs, not where the HTTP responses are."""

    def __init__(self) -> None:
        super().__init__(reply="one two three four")
        self.gate = asyncio.Event()
        self.in_flight = 0
        self.peak = 0

    async def stream(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            first = True
            async with aclosing(super().stream(request)) as chunks:
                async for chunk in chunks:
                    yield chunk
                    if first:
                        first = False
                        await self.gate.wait()
        finally:
            self.in_flight -= 1


def guard_models() -> ModelRegistry:
    """The conversation tests' models, and `gated-chat`."""
    models = conversation_models()
    chat = {name: models.chat(name) for name in models.chat_names()}
    return ModelRegistry(
        chat={**chat, GATED_CHAT_MODEL: GatedChatModel()},
        embeddings={name: models.embedding(name) for name in models.embedding_names()},
        default_chat=models.default_chat_name,
        default_embedding=models.default_embedding_name,
    )


async def started_app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings, models=guard_models())
    async with LifespanManager(application, startup_timeout=60):
        await runtime_of(application).models.start()
        yield application


def gated_model(app: FastAPI) -> GatedChatModel:
    gated = runtime_of(app).models.chat(GATED_CHAT_MODEL)
    assert isinstance(gated, GatedChatModel)
    return gated


def rate_storage(app: FastAPI) -> InMemoryRateLimitStorage:
    storage = runtime_of(app).rate_limits
    assert isinstance(storage, InMemoryRateLimitStorage)
    return storage


async def set_limits(
    app: FastAPI,
    *,
    user_id: str | None = None,
    api_key_id: str | None = None,
    **limits: int | None,
) -> None:
    """A limits row for a user or a key, written as the limits API writes it: the process
    forgets the limits it remembered once the row is committed."""
    row = CallerLimits(
        user_id=uuid.UUID(user_id) if user_id else None,
        api_key_id=uuid.UUID(api_key_id) if api_key_id else None,
        **limits,
    )
    runtime = runtime_of(app)
    async with runtime.sessionmaker.begin() as session:
        await LimitsRepository(session).add(row)
        runtime.limits.forget_on_commit(session)


def chat(content: str = "hello there", *, model: str = "fake-chat", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def seconds_of(reset: str) -> float:
    """A duration written as OpenAI writes it, in seconds."""
    assert RESET.match(reset), reset
    if reset.endswith("ms"):
        return int(reset[:-2]) / 1000
    hours, _, rest = reset.rpartition("h")
    minutes, _, rest = rest.rpartition("m")
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(rest.removesuffix("s"))


def rate_limit_headers(response: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name.startswith("x-ratel")}
