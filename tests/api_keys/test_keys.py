from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import openai
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from genai_service.kit.security import token_digest
from genai_service.models.api_key import ApiKey
from genai_service.runtime import runtime_of
from tests.conftest import FAKE_CHAT_MODEL
from tests.identity import Account, bearer, new_api_key

KEY_FIELDS = {"id", "name", "prefix", "created_at", "last_used_at", "expires_at"}


@pytest.fixture
async def asgi_http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        yield http


def openai_client(http: httpx.AsyncClient, api_key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url="http://testserver/v1", api_key=api_key, http_client=http, max_retries=0
    )


async def test_the_secret_is_shown_once(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    created = await new_api_key(client, alice, "laptop")
    assert set(created) == KEY_FIELDS | {"secret"}
    secret = created["secret"]
    assert secret.startswith("gsk_")
    assert len(secret) >= 40
    assert secret.startswith(created["prefix"])
    assert created["prefix"] != secret
    listed = (await client.get("/api/keys", headers=alice.headers)).json()
    assert listed["total"] == 1
    assert set(listed["items"][0]) == KEY_FIELDS
    assert secret not in str(listed)
    async with runtime_of(app).sessionmaker() as session:
        row = (await session.execute(select(ApiKey))).scalar_one()
    assert row.key_digest == token_digest(secret)


async def test_a_key_works_with_the_openai_client_until_revoked(
    client: httpx.AsyncClient, asgi_http: httpx.AsyncClient, alice: Account
) -> None:
    key = await new_api_key(client, alice)
    sdk = openai_client(asgi_http, key["secret"])
    models = [model.id async for model in sdk.models.list()]
    assert FAKE_CHAT_MODEL in models
    completion = await sdk.chat.completions.create(
        model=FAKE_CHAT_MODEL, messages=[{"role": "user", "content": "hello"}]
    )
    assert completion.choices[0].message.content
    listed = (await client.get("/api/keys", headers=alice.headers)).json()
    assert listed["items"][0]["last_used_at"] is not None

    deleted = await client.delete(f"/api/keys/{key['id']}", headers=alice.headers)
    assert deleted.status_code == 204
    with pytest.raises(openai.AuthenticationError):
        await sdk.models.list()
    assert (await client.get("/api/keys", headers=alice.headers)).json()["total"] == 0
    again = await client.delete(f"/api/keys/{key['id']}", headers=alice.headers)
    assert again.status_code == 404


async def test_a_key_works_wherever_a_token_does(client: httpx.AsyncClient, alice: Account) -> None:
    key = await new_api_key(client, alice)
    headers = bearer(key["secret"])
    assert (await client.get("/chat", headers=headers)).status_code == 200
    me = await client.get("/api/users/me", headers=headers)
    assert me.json()["email"] == alice.email
    assert (await client.get("/api/keys", headers=headers)).status_code == 200


async def test_an_unknown_or_tampered_key_is_401(
    client: httpx.AsyncClient, asgi_http: httpx.AsyncClient, alice: Account
) -> None:
    key = await new_api_key(client, alice)
    for secret in ("gsk_unknown", key["secret"] + "x", key["secret"][:-1]):
        with pytest.raises(openai.AuthenticationError):
            await openai_client(asgi_http, secret).models.list()


async def test_another_users_key_is_not_found(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account
) -> None:
    key = await new_api_key(client, alice)
    for intruder in (bob, admin):
        response = await client.delete(f"/api/keys/{key['id']}", headers=intruder.headers)
        assert response.status_code == 404
        listed = (await client.get("/api/keys", headers=intruder.headers)).json()
        assert listed["total"] == 0
    assert (await client.get("/chat", headers=bearer(key["secret"]))).status_code == 200


async def test_keys_expire(client: httpx.AsyncClient, app: FastAPI, alice: Account) -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    response = await client.post(
        "/api/keys", json={"name": "short", "expires_at": soon.isoformat()}, headers=alice.headers
    )
    assert response.status_code == 201
    key = response.json()
    assert datetime.fromisoformat(key["expires_at"]) == soon
    headers = bearer(key["secret"])
    assert (await client.get("/api/users/me", headers=headers)).status_code == 200
    async with runtime_of(app).sessionmaker() as session:
        row = await session.get(ApiKey, uuid.UUID(key["id"]))
        assert row is not None
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        await session.commit()
    assert (await client.get("/api/users/me", headers=headers)).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "x" * 101},
        {"name": "past", "expires_at": "2020-01-01T00:00:00Z"},
        {"name": "naive", "expires_at": "2999-01-01T00:00:00"},
        {"name": "past year 9999 in UTC", "expires_at": "9999-12-31T23:59:59-23:59"},
    ],
)
async def test_invalid_keys_are_422(
    client: httpx.AsyncClient, alice: Account, body: dict[str, str]
) -> None:
    assert (await client.post("/api/keys", json=body, headers=alice.headers)).status_code == 422


async def test_keys_are_listed_newest_first_a_page_at_a_time(
    client: httpx.AsyncClient, alice: Account
) -> None:
    for name in ("one", "two", "three"):
        await new_api_key(client, alice, name)
    page = (await client.get("/api/keys", params={"limit": 2}, headers=alice.headers)).json()
    assert (page["total"], len(page["items"])) == (3, 2)
    assert [k["name"] for k in page["items"]] == ["three", "two"]
