"""The guard of model routes: checked before the model runs, in a session closed by then."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from fastapi import FastAPI

from genai_service.runtime import runtime_of
from tests.conftest import FAKE_CHAT_MODEL
from tests.fakes import ScriptedChatModel
from tests.identity import Account, bearer
from tests.polling import wait_until


async def slow_model(app: FastAPI) -> ScriptedChatModel:
    """The fake model, slowed, once the pool is idle: the budget leases sweep at start-up, on a
    connection of their own, and are then quiet for far longer than a test."""
    await wait_until(lambda: checked_out_connections(app) == 0)
    model = runtime_of(app).models.chat(FAKE_CHAT_MODEL)
    assert isinstance(model, ScriptedChatModel)
    model.chunk_delay = 0.05
    return model


def checked_out_connections(app: FastAPI) -> int:
    count: int = runtime_of(app).engine.pool.checkedout()
    return count


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "access-token"])
async def test_a_generation_holds_no_database_connection(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, signed_in: bool
) -> None:
    model = await slow_model(app)
    body = {
        "model": FAKE_CHAT_MODEL,
        "messages": [{"role": "user", "content": "one two three four five six"}],
    }
    headers = alice.headers if signed_in else {}
    request = asyncio.create_task(client.post("/v1/chat/completions", json=body, headers=headers))
    while not model.requests:  # the guard has passed once the model has the request
        assert not request.done(), (await request).text
        await asyncio.sleep(0.01)
    assert checked_out_connections(app) == 0
    response = await request
    assert response.status_code == 200
    assert response.json()["usage"]["completion_tokens"] == 8


async def test_the_guard_still_refuses_bad_credentials(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    model = await slow_model(app)
    response = await client.post(
        "/v1/chat/completions",
        json={"model": FAKE_CHAT_MODEL, "messages": [{"role": "user", "content": "hi"}]},
        headers=bearer("gsk_not-a-real-key"),
    )
    assert response.status_code == 401
    assert json.loads(response.content)["error"]["type"] == "authentication_error"
    assert model.requests == []
    assert checked_out_connections(app) == 0
