"""Conversations as resources: create, list (page, search, order), read, update, delete."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from genai_service.models.conversation import Generation, Message
from genai_service.runtime import runtime_of
from tests.conversations.support import ask, messages_of, new_conversation
from tests.identity import Account

CONVERSATION_FIELDS = {
    "id",
    "title",
    "system_prompt",
    "model",
    "documents",
    "created_at",
    "updated_at",
    "last_activity_at",
}


async def test_create_and_read(client: httpx.AsyncClient, alice: Account) -> None:
    created = await new_conversation(
        client, alice, title="Trip", system_prompt="Be brief.", model="fake-chat"
    )
    assert set(created) == CONVERSATION_FIELDS
    assert created["title"] == "Trip"
    assert created["system_prompt"] == "Be brief."
    assert created["documents"] is None
    read = await client.get(f"/api/conversations/{created['id']}", headers=alice.headers)
    assert read.status_code == 200
    assert read.json() == created


async def test_an_empty_body_is_enough(client: httpx.AsyncClient, alice: Account) -> None:
    created = await new_conversation(client, alice)
    assert created["title"] is None
    assert created["model"] is None


async def test_unknown_model_is_refused(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.post(
        "/api/conversations", json={"model": "no-such-model"}, headers=alice.headers
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "no-such-model" in response.json()["detail"]


async def test_documents_are_kept_as_given(client: httpx.AsyncClient, alice: Account) -> None:
    document = str(uuid.uuid4())
    listed = await new_conversation(client, alice, documents=[document])
    assert listed["documents"] == [document]
    everything = await new_conversation(client, alice, documents="all")
    assert everything["documents"] == "all"
    bad = await client.post("/api/conversations", json={"documents": "some"}, headers=alice.headers)
    assert bad.status_code == 422


async def test_list_is_paged_newest_activity_first(
    client: httpx.AsyncClient, alice: Account
) -> None:
    ids = [(await new_conversation(client, alice, title=f"c{n}"))["id"] for n in range(5)]
    page = (
        await client.get("/api/conversations", params={"limit": 2}, headers=alice.headers)
    ).json()
    assert page["total"] == 5
    assert [item["id"] for item in page["items"]] == ids[::-1][:2]
    second = (
        await client.get(
            "/api/conversations", params={"limit": 2, "offset": 2}, headers=alice.headers
        )
    ).json()
    assert [item["id"] for item in second["items"]] == ids[::-1][2:4]
    # A turn in the oldest conversation makes it the most recently active.
    assert (await ask(client, alice, ids[0], "hello")).status_code == 201
    first = (await client.get("/api/conversations", headers=alice.headers)).json()
    assert first["items"][0]["id"] == ids[0]


async def test_q_searches_titles(client: httpx.AsyncClient, alice: Account) -> None:
    await new_conversation(client, alice, title="Holiday in Rome")
    await new_conversation(client, alice, title="Tax return")
    await new_conversation(client, alice, title="100% done_right")
    await new_conversation(client, alice)

    async def titles(q: str) -> list[str]:
        response = await client.get("/api/conversations", params={"q": q}, headers=alice.headers)
        assert response.status_code == 200
        return sorted(item["title"] for item in response.json()["items"])

    assert await titles("rome") == ["Holiday in Rome"]
    assert await titles("TAX") == ["Tax return"]
    assert await titles("%") == ["100% done_right"]
    assert await titles("_") == ["100% done_right"]
    assert await titles("nothing like it") == []


async def test_patch_changes_only_what_is_sent(client: httpx.AsyncClient, alice: Account) -> None:
    created = await new_conversation(client, alice, title="Old", system_prompt="Be brief.")
    url = f"/api/conversations/{created['id']}"
    response = await client.patch(url, json={"title": "New"}, headers=alice.headers)
    assert response.status_code == 200
    assert response.json()["title"] == "New"
    assert response.json()["system_prompt"] == "Be brief."
    cleared = await client.patch(url, json={"system_prompt": None}, headers=alice.headers)
    assert cleared.json()["system_prompt"] is None
    assert cleared.json()["title"] == "New"
    bad_model = await client.patch(url, json={"model": "nope"}, headers=alice.headers)
    assert bad_model.status_code == 400


async def test_delete_removes_messages(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    created = await new_conversation(client, alice)
    assert (await ask(client, alice, created["id"], "hello")).status_code == 201
    url = f"/api/conversations/{created['id']}"
    assert (await client.delete(url, headers=alice.headers)).status_code == 204
    assert (await client.get(url, headers=alice.headers)).status_code == 404
    async with runtime_of(app).sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Message)) == 0
        assert await session.scalar(select(func.count()).select_from(Generation)) == 0


async def test_another_users_conversation_is_not_found(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    created = await new_conversation(client, alice, title="Private")
    await ask(client, alice, created["id"], "secret")
    url = f"/api/conversations/{created['id']}"
    for method, path, body in [
        ("GET", url, None),
        ("PATCH", url, {"title": "Mine now"}),
        ("DELETE", url, None),
        ("GET", f"{url}/messages", None),
        ("POST", f"{url}/messages", {"content": "hi"}),
    ]:
        response = await client.request(method, path, json=body, headers=bob.headers)
        assert response.status_code == 404, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    listed = (await client.get("/api/conversations", headers=bob.headers)).json()
    assert listed["total"] == 0
    assert [m["content"] for m in await messages_of(client, alice, created["id"])] == [
        "secret",
        "You said: secret",
    ]
    still = (await client.get(url, headers=alice.headers)).json()
    assert still["title"] == "Private"


async def test_messages_are_paged_oldest_first(client: httpx.AsyncClient, alice: Account) -> None:
    created = await new_conversation(client, alice, title="Counting")
    for number in range(3):
        assert (await ask(client, alice, created["id"], f"n{number}")).status_code == 201
    url = f"/api/conversations/{created['id']}/messages"
    page = (await client.get(url, params={"limit": 4}, headers=alice.headers)).json()
    assert page["total"] == 6
    assert [m["content"] for m in page["items"]] == [
        "n0",
        "You said: n0",
        "n1",
        "You said: n1",
    ]
    assert [m["role"] for m in page["items"]] == ["user", "assistant"] * 2
