"""Conversation turns are held to the same limits: a refused turn is a 429 (an error frame over a
WebSocket) and stores nothing; generated titles are not limited."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from httpx_ws import aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport

from genai_service.runtime import runtime_of
from tests.conversations.support import ask, messages_of, new_conversation
from tests.fakes import ScriptedChatModel
from tests.guards.support import set_limits
from tests.identity import Account
from tests.polling import wait_until

RECEIVE_TIMEOUT = 10.0


async def test_a_refused_turn_is_a_429_problem_and_stores_nothing(
    app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    await set_limits(app, user_id=alice.id, requests_per_minute=1)
    conversation = await new_conversation(client, alice)
    assert (await ask(client, alice, conversation["id"], "hello")).status_code == 201
    refused = await ask(client, alice, conversation["id"], "and again")
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "60"
    problem = refused.json()
    assert problem["type"] == "urn:genai-service:problem:rate-limited"
    assert (problem["limit"], problem["scope"], problem["allowed"]) == (
        "requests_per_minute",
        "user",
        1,
    )
    streamed = await ask(client, alice, conversation["id"], "streamed?", stream=True)
    assert streamed.status_code == 429
    assert streamed.headers["content-type"] == "application/problem+json"
    stored = await messages_of(client, alice, conversation["id"])
    assert [message["content"] for message in stored] == ["hello", "You said: hello"]

    # The title of the first exchange reached the model although no request is left this minute.
    model = runtime_of(app).models.chat("fake-chat")
    assert isinstance(model, ScriptedChatModel)
    await wait_until(lambda: len(model.requests) == 2)
    assert "hello" in model.requests[-1].messages[-1].content
    assert (
        model.requests[-1].sampling.max_tokens
        == runtime_of(app).settings.conversations.title_max_tokens
    )


async def test_a_refused_turn_over_a_websocket_is_an_error_frame(
    app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    await set_limits(app, user_id=alice.id, requests_per_minute=1)
    conversation = await new_conversation(client, alice, title="Socket")
    url = f"http://testserver/api/conversations/{conversation['id']}/ws?token={alice.access_token}"
    transport = ASGIWebSocketTransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
        aconnect_ws(url, http) as socket,
    ):

        async def frames_until_end() -> list[dict[str, Any]]:
            frames: list[dict[str, Any]] = []
            while not frames or frames[-1]["type"] not in {"done", "error"}:
                frames.append(await socket.receive_json(timeout=RECEIVE_TIMEOUT))
            return frames

        await socket.send_json({"type": "message", "content": "hello"})
        assert (await frames_until_end())[-1]["type"] == "done"
        await socket.send_json({"type": "message", "content": "again"})
        [refusal] = await frames_until_end()
        assert (refusal["id"], refusal["data"]["status"]) == (None, 429)
        assert refusal["data"]["retry_after"] == 60
        assert "requests_per_minute" in refusal["data"]["detail"]
    stored = await messages_of(client, alice, conversation["id"])
    assert [message["content"] for message in stored] == ["hello", "You said: hello"]
