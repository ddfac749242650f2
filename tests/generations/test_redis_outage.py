"""Redis goes away under a server writing a reply: a stream being read (SSE or WebSocket) ends
with a `503` `redis-unavailable` problem instead of hanging or being cut, the reply is stored as
it was left, and a cancel or a replay that needs Redis answers `503` until it is back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from httpx_ws import aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport

from genai_service.settings import RedisSettings, Settings
from tests.conftest import make_settings
from tests.conversations.support import (
    SLOW_CHAT_MODEL,
    messages_of,
    new_conversation,
    parse_sse,
    serve,
    started_app,
    wait_for_generation,
)
from tests.generations.test_orphans import add_orphan
from tests.identity import Account
from tests.redis_server import RedisServer

RECEIVE_TIMEOUT = 10.0


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A Redis of this test's own, since the test stops it."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_server: RedisServer) -> Settings:
    redis = RedisSettings(url=redis_server.url, key_prefix="outage:", timeout=1.0)
    return make_settings(tmp_path, database_url, redis=redis)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async for application in started_app(settings):
        yield application


def is_redis_unavailable(problem: dict[str, Any]) -> bool:
    return problem["status"] == 503 and problem.get("type", "").endswith(":redis-unavailable")


async def test_an_sse_reader_hears_the_outage_and_the_reply_is_stored_as_left(
    app: FastAPI,
    client: httpx.AsyncClient,
    redis_server: RedisServer,
    alice: Account,
) -> None:
    conversation = await new_conversation(client, alice, model=SLOW_CHAT_MODEL)
    url = f"/api/conversations/{conversation['id']}/messages"
    body = ""
    async for base_url in serve(app):
        async with (
            httpx.AsyncClient(base_url=base_url, timeout=RECEIVE_TIMEOUT) as http,
            http.stream(
                "POST", url, json={"content": "long one", "stream": True}, headers=alice.headers
            ) as response,
        ):
            assert response.status_code == 200
            generation_id = response.headers["X-Generation-ID"]
            async for text in response.aiter_text():
                body += text
                if body.count("event: delta") >= 2 and redis_server.process is not None:
                    redis_server.stop()
                    redis_server.process = None
    events, _ = parse_sse(body)
    last = events[-1]
    assert (last.event, last.id) == ("error", None)
    assert is_redis_unavailable(last.data)
    assert [event.id for event in events[:-1]] == list(range(1, len(events)))
    streamed = "".join(event.data["text"] for event in events if event.event == "delta")

    generation = await wait_for_generation(client, alice, generation_id)
    assert generation["status"] == "failed"
    stored = (await messages_of(client, alice, conversation["id"]))[-1]
    assert stored["id"] == generation["assistant_message_id"]
    assert stored["status"] == "failed"
    assert "Redis" in stored["error"]
    assert stored["content"].startswith(streamed)

    replay = await client.get(f"/api/generations/{generation_id}/events", headers=alice.headers)
    assert replay.status_code == 503
    assert replay.headers["content-type"] == "application/problem+json"
    assert is_redis_unavailable(replay.json())
    assert replay.headers["Retry-After"]


async def test_a_websocket_reader_hears_the_outage_and_stays_open(
    app: FastAPI, client: httpx.AsyncClient, redis_server: RedisServer, alice: Account
) -> None:
    conversation = await new_conversation(client, alice, model=SLOW_CHAT_MODEL)
    url = f"http://testserver/api/conversations/{conversation['id']}/ws?token={alice.access_token}"
    transport = ASGIWebSocketTransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
        aconnect_ws(url, http) as socket,
    ):
        await socket.send_json({"type": "message", "content": "long one"})
        frames: list[dict[str, Any]] = []
        while sum(frame["type"] == "delta" for frame in frames) < 2:
            frames.append(await socket.receive_json(timeout=RECEIVE_TIMEOUT))
        redis_server.stop()
        while frames[-1]["type"] != "error":
            frames.append(await socket.receive_json(timeout=RECEIVE_TIMEOUT))
        assert frames[-1]["id"] is None
        assert frames[-1]["data"]["status"] == 503
        assert frames[-1]["data"]["title"] == "Redis unavailable"
        generation_id = frames[0]["data"]["generation_id"]
        await socket.send_json({"type": "follow", "generation_id": generation_id, "after": 2})
        refused = await socket.receive_json(timeout=RECEIVE_TIMEOUT)
        assert (refused["type"], refused["id"], refused["data"]["status"]) == ("error", None, 503)
    generation = await wait_for_generation(client, alice, generation_id)
    assert generation["status"] == "failed"


async def test_a_cancel_that_cannot_reach_the_writer_is_a_503(
    app: FastAPI, client: httpx.AsyncClient, redis_server: RedisServer, alice: Account
) -> None:
    """Another process is writing (its heartbeat is fresh): only Redis can reach it, so while
    Redis is away the cancel says so, and the generation is left to its writer."""
    conversation = await new_conversation(client, alice)
    generation_id = await add_orphan(app, conversation["id"], alice, heartbeat_ago=timedelta(0))
    redis_server.stop()
    cancel = f"/api/generations/{generation_id}/cancel"
    refused = await client.post(cancel, headers=alice.headers)
    assert refused.status_code == 503, refused.text
    assert is_redis_unavailable(refused.json())
    assert refused.headers["Retry-After"]
    generation = await client.get(f"/api/generations/{generation_id}", headers=alice.headers)
    assert generation.json()["status"] == "running"
