"""`WS /api/conversations/{id}/ws`: turns, cancel, bad frames and credentials over a WebSocket,
with the generations' events in the process and on Redis."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets.asyncio.client
from fastapi import FastAPI
from httpx_ws import AsyncWebSocketSession, WebSocketDisconnect, aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport

from genai_service.settings import RedisSettings, Settings
from tests.conftest import make_settings
from tests.conversations.support import (
    LONG_REPLY,
    SLOW_CHAT_MODEL,
    messages_of,
    new_conversation,
    wait_for_generation,
)
from tests.identity import Account, new_api_key

RECEIVE_TIMEOUT = 10.0


@pytest.fixture
def settings(tmp_path: Path, database_url: str, shared_state: RedisSettings) -> Settings:
    return make_settings(tmp_path, database_url, redis=shared_state)


@asynccontextmanager
async def connect(
    app: FastAPI, conversation_id: str, token: str | None
) -> AsyncIterator[AsyncWebSocketSession]:
    """A WebSocket to the app in this task (the transport's task group must not change tasks)."""
    async with (
        httpx.AsyncClient(
            transport=ASGIWebSocketTransport(app=app), base_url="http://testserver"
        ) as http,
        aconnect_ws(socket_url(conversation_id, token), http) as socket,
    ):
        yield socket


def socket_url(conversation_id: str, token: str | None) -> str:
    url = f"http://testserver/api/conversations/{conversation_id}/ws"
    return url if token is None else f"{url}?token={token}"


async def receive(socket: AsyncWebSocketSession) -> dict[str, Any]:
    frame: dict[str, Any] = await socket.receive_json(timeout=RECEIVE_TIMEOUT)
    return frame


async def receive_turn(socket: AsyncWebSocketSession) -> list[dict[str, Any]]:
    """Frames up to and including the `done` or `error` event of a turn (error frames about
    other frames have no `id` and do not end it)."""
    frames = [await receive(socket)]
    while frames[-1]["type"] not in {"done", "error"} or frames[-1]["id"] is None:
        frames.append(await receive(socket))
    return frames


async def test_a_turn_over_a_websocket(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    conversation = await new_conversation(client, alice, title="WS")
    async with connect(app, conversation["id"], alice.access_token) as ws:
        await ws.send_json({"type": "message", "content": "hello socket"})
        frames = await receive_turn(ws)
        assert [frame["type"] for frame in frames] == ["generation", *["delta"] * 4, "done"]
        assert [frame["id"] for frame in frames] == list(range(1, 7))
        assert "".join(f["data"]["text"] for f in frames[1:-1]) == "You said: hello socket"
        done = frames[-1]["data"]
        assert done["message"]["content"] == "You said: hello socket"
        # The socket takes the next turn.
        await ws.send_json({"type": "message", "content": "again", "max_tokens": 1})
        second = await receive_turn(ws)
        assert second[-1]["data"]["message"]["content"] == "You"
    stored = await messages_of(client, alice, conversation["id"])
    assert [m["content"] for m in stored] == [
        "hello socket",
        "You said: hello socket",
        "again",
        "You",
    ]


async def test_an_api_key_works_as_the_token(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    key = await new_api_key(client, alice)
    conversation = await new_conversation(client, alice, title="Key")
    async with connect(app, conversation["id"], key["secret"]) as ws:
        await ws.send_json({"type": "message", "content": "by key"})
        frames = await receive_turn(ws)
    assert frames[-1]["type"] == "done"


async def test_bad_frames_get_error_frames_and_the_socket_stays(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    conversation = await new_conversation(client, alice, title="Bad")
    async with connect(app, conversation["id"], alice.access_token) as ws:
        for bad in ["not json", '{"type": "dance"}', '{"type": "message"}', "[1, 2]"]:
            await ws.send_text(bad)
            frame = await receive(ws)
            assert frame["type"] == "error"
            assert frame["id"] is None
            assert frame["data"]["status"] == 422
            assert frame["data"]["detail"]
        await ws.send_json({"type": "cancel"})
        nothing = await receive(ws)
        assert (nothing["type"], nothing["data"]["status"]) == ("error", 409)
        await ws.send_json({"type": "message", "content": "still here"})
        assert (await receive_turn(ws))[-1]["type"] == "done"


async def test_a_bad_token_closes_with_1008(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    conversation = await new_conversation(client, alice, title="Locked")
    for token in ["not-a-token", "gsk_not_a_key", alice.access_token[:-4] + "AAAA"]:
        async with connect(app, conversation["id"], token) as ws:
            with pytest.raises(WebSocketDisconnect) as closed:
                await ws.receive_json(timeout=RECEIVE_TIMEOUT)
        assert closed.value.code == 1008


async def test_another_users_conversation_closes_with_4404(
    client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
) -> None:
    conversation = await new_conversation(client, alice, title="Alice's")
    async with connect(app, conversation["id"], bob.access_token) as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_json(timeout=RECEIVE_TIMEOUT)
    assert closed.value.code == 4404
    assert await messages_of(client, alice, conversation["id"]) == []


async def test_cancel_over_the_socket(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    conversation = await new_conversation(client, alice, title="Stop", model=SLOW_CHAT_MODEL)
    async with connect(app, conversation["id"], alice.access_token) as ws:
        await ws.send_json({"type": "message", "content": "long one"})
        frames = [await receive(ws) for _ in range(3)]
        await ws.send_json({"type": "cancel"})
        frames += await receive_turn(ws)
    assert frames[-1]["type"] == "done"
    assert frames[-1]["data"]["status"] == "cancelled"
    stored = (await messages_of(client, alice, conversation["id"]))[-1]
    assert stored["status"] == "cancelled"
    assert LONG_REPLY.startswith(stored["content"])
    assert len(stored["content"]) < len(LONG_REPLY)


async def test_a_second_message_while_one_runs_is_an_error_frame(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    conversation = await new_conversation(client, alice, title="Busy", model=SLOW_CHAT_MODEL)
    async with connect(app, conversation["id"], alice.access_token) as ws:
        await ws.send_json({"type": "message", "content": "one", "max_tokens": 5})
        await ws.send_json({"type": "message", "content": "two"})
        frames = await receive_turn(ws)
        errors = [f for f in frames if f["type"] == "error" and f["id"] is None]
        assert [e["data"]["status"] for e in errors] == [409]
        assert frames[-1]["type"] == "done"


async def test_anonymous_mode_needs_no_token(client: httpx.AsyncClient, app: FastAPI) -> None:
    created = await client.post("/api/conversations", json={"title": "Anon"})
    assert created.status_code == 201
    async with connect(app, created.json()["id"], None) as ws:
        await ws.send_json({"type": "message", "content": "hi"})
        assert (await receive_turn(ws))[-1]["type"] == "done"


async def test_the_token_stays_out_of_the_logs(
    client: httpx.AsyncClient, server_url: str, alice: Account, captured_logs: list[str]
) -> None:
    """uvicorn logs each WebSocket's request line, query string included: it is redacted."""
    conversation = await new_conversation(client, alice, title="Quiet")
    url = server_url.replace("http://", "ws://")
    address = f"{url}/api/conversations/{conversation['id']}/ws?token={alice.access_token}"
    async with websockets.asyncio.client.connect(address) as socket:
        await socket.send(json.dumps({"type": "message", "content": "hi"}))
        while json.loads(await socket.recv())["type"] != "done":
            pass
    accepted = [line for line in captured_logs if "WebSocket /api/conversations" in line]
    assert accepted
    assert "token=[redacted]" in accepted[0]
    assert not [line for line in captured_logs if alice.access_token in line]


async def test_a_closed_socket_does_not_stop_the_reply(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    conversation = await new_conversation(client, alice, title="Gone", model=SLOW_CHAT_MODEL)
    async with connect(app, conversation["id"], alice.access_token) as ws:
        await ws.send_json({"type": "message", "content": "long one"})
        first = await receive(ws)
        await receive(ws)
    generation = await wait_for_generation(client, alice, first["data"]["generation_id"])
    assert generation["status"] == "completed"
    stored = (await messages_of(client, alice, conversation["id"]))[-1]
    assert (stored["status"], stored["content"]) == ("completed", LONG_REPLY)


async def test_a_reply_started_over_http_is_replayed_over_the_socket_after_an_id(
    client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
) -> None:
    conversation = await new_conversation(client, alice, title="Follow", model=SLOW_CHAT_MODEL)
    started = await client.post(
        f"/api/conversations/{conversation['id']}/messages",
        json={"content": "long one", "stream": True},
        headers=alice.headers,
        timeout=30,
    )
    assert started.status_code == 200
    generation_id = started.headers["X-Generation-ID"]
    async with connect(app, conversation["id"], alice.access_token) as ws:
        await ws.send_json({"type": "follow", "generation_id": generation_id, "after": 2})
        frames = await receive_turn(ws)
    assert [frame["id"] for frame in frames] == list(range(3, frames[-1]["id"] + 1))
    assert frames[-1]["data"]["message"]["content"] == LONG_REPLY
    other = await new_conversation(client, alice, title="Other")
    async with connect(app, other["id"], alice.access_token) as ws:
        await ws.send_json({"type": "follow", "generation_id": generation_id})
        refused = await receive(ws)
        assert (refused["type"], refused["data"]["status"]) == ("error", 404)
    bobs = await new_conversation(client, bob, title="Bob's")
    async with connect(app, bobs["id"], bob.access_token) as ws:
        await ws.send_json({"type": "follow", "generation_id": generation_id})
        assert (await receive(ws))["data"]["status"] == 404
