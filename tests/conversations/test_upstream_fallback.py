"""Conversation turns on a fallback chain of two real model hosts (llama.cpp's own
OpenAI-compatible server), one of which dies: before its first token the next host answers; after
it the turn ends with a clear error and the partial reply is stored once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import SecretStr

from genai_service.app import create_app
from genai_service.runtime import runtime_of
from genai_service.settings import InferenceSettings, ProviderSettings
from tests.conftest import make_settings
from tests.conversations.support import (
    SseEvent,
    ask,
    messages_of,
    new_conversation,
    parse_sse,
    serve,
    wait_for_generation,
)
from tests.identity import Account
from tests.llama_cpp_server import MODEL_ALIAS, LlamaCppServer
from tests.polling import wait_until

pytestmark = pytest.mark.integration

MODEL = "smollm2"
STORY = "Write a long story about a fox who learns to sail."


@pytest.fixture(scope="module")
def second_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaCppServer]:
    with LlamaCppServer(tmp_path_factory.mktemp("second-host"), name="second-host") as server:
        yield server


@pytest.fixture
def first_host(tmp_path: Path) -> Iterator[LlamaCppServer]:
    with LlamaCppServer(tmp_path, name="first-host") as server:
        yield server


def remote(host: LlamaCppServer) -> ProviderSettings:
    return ProviderSettings(
        kind="openai_compatible",
        base_url=host.base_url,
        api_key=SecretStr("unused"),
        model=MODEL_ALIAS,
        max_retries=0,
        timeout=60,
        context_window=512,
    )


@pytest.fixture
async def app(
    tmp_path: Path, database_url: str, first_host: LlamaCppServer, second_host: LlamaCppServer
) -> AsyncIterator[FastAPI]:
    inference = InferenceSettings(
        chat_models={MODEL: [remote(first_host), remote(second_host)]},
        embedding_models={},
        default_chat_model=MODEL,
    )
    application = create_app(make_settings(tmp_path, database_url, inference=inference))
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        await runtime_of(application).models.start()
        yield application


async def test_a_host_killed_before_its_first_token_hands_the_turn_to_the_next(
    client: httpx.AsyncClient,
    alice: Account,
    first_host: LlamaCppServer,
    second_host: LlamaCppServer,
) -> None:
    """The request is in the first host's socket (the host is paused and has read nothing)
    when the host is killed."""
    answered_before = second_host.chat_requests_answered()
    conversation = await new_conversation(client, alice)
    first_host.pause()
    turn = asyncio.ensure_future(
        ask(client, alice, conversation["id"], "Hello!", max_tokens=12, temperature=0)
    )
    await wait_until(first_host.request_waiting)
    first_host.kill()
    response = await turn
    assert response.status_code == 201, response.text
    reply = response.json()["assistant_message"]
    assert reply["status"] == "completed"
    assert reply["content"]
    assert second_host.chat_requests_answered() == answered_before + 1
    stored = await messages_of(client, alice, conversation["id"])
    assert [(m["role"], m["status"]) for m in stored] == [
        ("user", "completed"),
        ("assistant", "completed"),
    ]


async def read_events(
    server_url: str, account: Account, conversation_id: str, *, kill_after_deltas: int, host: Any
) -> list[SseEvent]:
    """A streamed turn read to its final event; `host` is killed once `kill_after_deltas`
    deltas have arrived."""
    events: list[SseEvent] = []
    async with (
        httpx.AsyncClient(base_url=server_url, timeout=60) as http,
        http.stream(
            "POST",
            f"/api/conversations/{conversation_id}/messages",
            json={"content": STORY, "stream": True, "max_tokens": 200, "temperature": 0},
            headers=account.headers,
        ) as response,
    ):
        assert response.status_code == 200
        block: list[str] = []
        async for line in response.aiter_lines():
            if line:
                block.append(line)
                continue
            events.extend(parse_sse("\n".join(block) + "\n\n")[0])
            block = []
            if sum(event.event == "delta" for event in events) == kill_after_deltas:
                host.kill()
    return events


async def test_a_host_killed_mid_reply_ends_the_turn_with_the_partial_reply_stored_once(
    app: FastAPI,
    client: httpx.AsyncClient,
    alice: Account,
    first_host: LlamaCppServer,
    second_host: LlamaCppServer,
) -> None:
    answered_before = second_host.chat_requests_answered()
    conversation = await new_conversation(client, alice)
    async for server_url in serve(app):
        events = await read_events(
            server_url, alice, conversation["id"], kill_after_deltas=3, host=first_host
        )
    kinds = [event.event for event in events]
    assert kinds[0] == "generation"
    assert kinds[-1] == "error"
    assert set(kinds[1:-1]) == {"delta"}
    streamed = "".join(event.data["text"] for event in events if event.event == "delta")
    final = events[-1].data
    assert final["status"] == "failed"
    assert "broke off during the reply" in final["detail"]
    assert final["message"]["content"] == streamed
    generation = await wait_for_generation(client, alice, final["generation_id"])
    assert generation["status"] == "failed"

    stored = await messages_of(client, alice, conversation["id"])
    assert [(m["role"], m["status"]) for m in stored] == [
        ("user", "completed"),
        ("assistant", "failed"),
    ]
    assert stored[1]["content"] == streamed
    assert "broke off during the reply" in stored[1]["error"]
    assert second_host.chat_requests_answered() == answered_before, "no second reply was asked"
