"""Helpers of the conversation and generation tests: models, requests, SSE parsing, a live server.

The app of these tests serves several fake chat models behind the real registry:
`fake-chat` (instant), `slow-chat` (a chunk every 50 ms), `failing-chat` (fails after two
chunks) and `small-chat` (a context window of 64 tokens).
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from genai_service.app import create_app
from genai_service.inference.base import ProviderError
from genai_service.inference.registry import ModelRegistry
from genai_service.runtime import runtime_of
from genai_service.settings import Settings
from tests.conftest import FAKE_CHAT_MODEL, FAKE_EMBEDDING_MODEL
from tests.fakes import FailingChatModel, FakeEmbeddingModel, ScriptedChatModel
from tests.identity import Account

SLOW_CHAT_MODEL = "slow-chat"
FAILING_CHAT_MODEL = "failing-chat"
SMALL_CHAT_MODEL = "small-chat"
SMALL_CONTEXT = 64
SLOW_CHUNK_SECONDS = 0.05
LONG_REPLY = " ".join(f"word{index}" for index in range(60))


def conversation_models() -> ModelRegistry:
    return ModelRegistry(
        chat={
            FAKE_CHAT_MODEL: ScriptedChatModel(),
            SLOW_CHAT_MODEL: ScriptedChatModel(reply=LONG_REPLY, chunk_delay=SLOW_CHUNK_SECONDS),
            FAILING_CHAT_MODEL: FailingChatModel(
                ProviderError("the upstream server closed the connection"), after_chunks=2
            ),
            SMALL_CHAT_MODEL: ScriptedChatModel(context_window=SMALL_CONTEXT),
        },
        embeddings={FAKE_EMBEDDING_MODEL: FakeEmbeddingModel()},
        default_chat=FAKE_CHAT_MODEL,
        default_embedding=FAKE_EMBEDDING_MODEL,
    )


async def started_app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings, models=conversation_models())
    async with LifespanManager(application, startup_timeout=60):
        await runtime_of(application).models.start()
        yield application


async def new_conversation(
    client: httpx.AsyncClient, account: Account, **fields: Any
) -> dict[str, Any]:
    response = await client.post("/api/conversations", json=fields, headers=account.headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def ask(
    client: httpx.AsyncClient, account: Account, conversation_id: str, content: str, **extra: Any
) -> httpx.Response:
    return await client.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"content": content, **extra},
        headers=account.headers,
    )


async def messages_of(
    client: httpx.AsyncClient, account: Account, conversation_id: str
) -> list[dict[str, Any]]:
    response = await client.get(
        f"/api/conversations/{conversation_id}/messages",
        params={"limit": 100},
        headers=account.headers,
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


@dataclass
class SseEvent:
    id: int | None
    event: str
    data: dict[str, Any]


def parse_sse(text: str) -> tuple[list[SseEvent], int]:
    """The events of an SSE body, and how many comment lines (heartbeats) it had."""
    events: list[SseEvent] = []
    comments = 0
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                comments += 1
            elif line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
        if "event" in fields or "data" in fields:
            events.append(
                SseEvent(
                    id=int(fields["id"]) if "id" in fields else None,
                    event=fields.get("event", "message"),
                    data=json.loads(fields.get("data", "null")),
                )
            )
    return events, comments


async def wait_for_generation(
    client: httpx.AsyncClient, account: Account, generation_id: str, *, within: float = 10.0
) -> dict[str, Any]:
    """The generation once it is no longer running."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        response = await client.get(f"/api/generations/{generation_id}", headers=account.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] != "running":
            return body
        assert loop.time() < deadline, "the generation did not finish in time"
        await asyncio.sleep(0.02)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def serve(app: FastAPI) -> AsyncIterator[str]:
    """The (already started) app on a loopback port, in this event loop: real streaming."""
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            pytest.fail("the server stopped before it started")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
