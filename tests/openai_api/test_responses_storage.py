"""Stored responses: `store`, `previous_response_id`, `GET` and `DELETE`, each caller's own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from genai_service.inference.base import ChatMessage
from genai_service.models.response import StoredResponse
from genai_service.runtime import runtime_of
from genai_service.settings import AuthSettings, Settings
from tests.conftest import client_for, make_settings
from tests.identity import Account
from tests.openai_api.responses_support import (
    SMALL_CHAT_MODEL,
    create,
    fake_model,
    output_text,
    started_app,
)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async for application in started_app(settings):
        yield application


async def stored_count(app: FastAPI) -> int:
    async with runtime_of(app).sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(StoredResponse)) or 0)


async def test_a_response_is_stored_and_read_back(client: httpx.AsyncClient) -> None:
    created = await create(client, {"input": "hi", "metadata": {"topic": "greeting"}})
    assert created["store"] is True
    assert created["metadata"] == {"topic": "greeting"}
    read = await client.get(f"/v1/responses/{created['id']}")
    assert read.status_code == 200
    assert read.json() == created


async def test_store_false_keeps_nothing(app: FastAPI, client: httpx.AsyncClient) -> None:
    created = await create(client, {"input": "hi", "store": False})
    assert created["store"] is False
    assert (await client.get(f"/v1/responses/{created['id']}")).status_code == 404
    follow_up = await client.post(
        "/v1/responses", json={"input": "more", "previous_response_id": created["id"]}
    )
    assert follow_up.status_code == 404
    assert follow_up.json()["error"]["param"] == "previous_response_id"
    assert await stored_count(app) == 0


async def test_previous_response_id_continues_the_conversation(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    first = await create(client, {"input": "my name is Ada", "instructions": "Be brief."})
    second = await create(
        client,
        {"input": "what is my name", "previous_response_id": first["id"]},
    )
    third = await create(
        client,
        {
            "input": "and again",
            "previous_response_id": second["id"],
            "instructions": "Be kind.",
        },
    )
    # Earlier input and output come first; earlier instructions are not carried over.
    assert fake_model(app).requests[-1].messages == [
        ChatMessage("system", "Be kind."),
        ChatMessage("user", "my name is Ada"),
        ChatMessage("assistant", output_text(first)),
        ChatMessage("user", "what is my name"),
        ChatMessage("assistant", output_text(second)),
        ChatMessage("user", "and again"),
    ]
    assert third["previous_response_id"] == second["id"]
    assert third["usage"]["input_tokens"] > second["usage"]["input_tokens"]


async def test_a_branch_from_an_earlier_response_leaves_out_the_later_turns(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    first = await create(client, {"input": "one"})
    await create(client, {"input": "two", "previous_response_id": first["id"]})
    await create(client, {"input": "two again", "previous_response_id": first["id"]})
    assert [m.content for m in fake_model(app).requests[-1].messages] == [
        "one",
        "You said: one",
        "two again",
    ]


async def test_delete_removes_the_response(app: FastAPI, client: httpx.AsyncClient) -> None:
    first = await create(client, {"input": "one"})
    second = await create(client, {"input": "two", "previous_response_id": first["id"]})
    deleted = await client.delete(f"/v1/responses/{first['id']}")
    assert deleted.status_code == 200
    assert deleted.json() == {"id": first["id"], "object": "response.deleted", "deleted": True}
    assert (await client.get(f"/v1/responses/{first['id']}")).status_code == 404
    assert (await client.delete(f"/v1/responses/{first['id']}")).status_code == 404
    continued = await client.post(
        "/v1/responses", json={"input": "x", "previous_response_id": first["id"]}
    )
    assert continued.status_code == 404
    # A response built on the deleted one keeps its whole conversation.
    await create(client, {"input": "three", "previous_response_id": second["id"]})
    assert [m.content for m in fake_model(app).requests[-1].messages] == [
        "one",
        "You said: one",
        "two",
        "You said: two",
        "three",
    ]
    assert await stored_count(app) == 2


async def test_another_users_response_is_not_found(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    created = await create(client, {"input": "secret"}, headers=alice.headers)
    path = f"/v1/responses/{created['id']}"
    assert (await client.get(path, headers=alice.headers)).status_code == 200
    for response in (
        await client.get(path, headers=bob.headers),
        await client.get(path),
        await client.delete(path, headers=bob.headers),
        await client.post(
            "/v1/responses",
            json={"input": "tell me", "previous_response_id": created["id"]},
            headers=bob.headers,
        ),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "response_not_found"
    assert (await client.get(path, headers=alice.headers)).status_code == 200


async def test_the_routes_need_a_caller_when_anonymous_mode_is_off(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(tmp_path, database_url, auth=AuthSettings(allow_anonymous=False))
    async for application in started_app(settings):
        async with client_for(application) as http:
            assert (await http.post("/v1/responses", json={"input": "hi"})).status_code == 401
            assert (await http.get("/v1/responses/resp_x")).status_code == 401
            assert (await http.delete("/v1/responses/resp_x")).status_code == 401


async def test_get_refuses_to_stream_a_stored_response(client: httpx.AsyncClient) -> None:
    created = await create(client, {"input": "hi"})
    response = await client.get(f"/v1/responses/{created['id']}", params={"stream": "true"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "stream"


async def test_function_call_output_must_answer_a_call(client: httpx.AsyncClient) -> None:
    first = await create(client, {"input": "hi"})
    for extra in ({}, {"previous_response_id": first["id"]}):
        response = await client.post(
            "/v1/responses",
            json={
                "input": [{"type": "function_call_output", "call_id": "call_x", "output": "1"}],
                **extra,
            },
        )
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "input[0].call_id"


async def test_truncation_auto_drops_the_oldest_items(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    model = fake_model(app, SMALL_CHAT_MODEL)
    turn = {"model": SMALL_CHAT_MODEL, "max_output_tokens": 10}
    previous = None
    for word in ("alpha", "bravo", "charlie", "delta", "echo"):
        body = {**turn, "input": f"{word} " * 3, "truncation": "auto"}
        if previous is not None:
            body["previous_response_id"] = previous
        previous = (await create(client, body))["id"]
        prompt = model.requests[-1].messages
        assert model.count_tokens(prompt) + 10 <= model.context_window
    kept = [m.content for m in model.requests[-1].messages]
    assert kept[-1].split()[0] == "echo"
    assert not any("alpha" in content for content in kept)
    # Without truncation, the same history is too long for the model.
    response = await client.post(
        "/v1/responses", json={**turn, "input": "foxtrot " * 12, "previous_response_id": previous}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"
