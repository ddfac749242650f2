"""Refresh-token rotation, reuse detection and logout."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from genai_service.kit.db import utcnow
from genai_service.kit.security import token_digest
from genai_service.models.refresh_token import RefreshToken
from genai_service.runtime import runtime_of
from tests.identity import Account, bearer, login


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/auth/refresh", json={"refresh_token": token})


async def me(client: httpx.AsyncClient, access_token: str) -> int:
    return (await client.get("/api/users/me", headers=bearer(access_token))).status_code


async def stored(app: FastAPI, token: str) -> RefreshToken:
    async with runtime_of(app).sessionmaker() as session:
        result = await session.execute(
            select(RefreshToken).where(RefreshToken.token_digest == token_digest(token))
        )
        row: RefreshToken = result.scalar_one()
        return row


async def test_refresh_rotates_the_pair(client: httpx.AsyncClient, alice: Account) -> None:
    response = await refresh(client, alice.refresh_token)
    assert response.status_code == 200
    pair = response.json()
    assert pair["refresh_token"] != alice.refresh_token
    assert pair["access_token"] != alice.access_token
    assert await me(client, pair["access_token"]) == 200
    assert (await refresh(client, pair["refresh_token"])).status_code == 200


async def test_refresh_tokens_are_stored_as_digests(app: FastAPI, alice: Account) -> None:
    row = await stored(app, alice.refresh_token)
    assert row.token_digest != alice.refresh_token
    assert len(row.token_digest) == 64


async def test_reusing_a_spent_token_revokes_the_whole_family(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    rotated = (await refresh(client, alice.refresh_token)).json()
    reuse = await refresh(client, alice.refresh_token)
    assert reuse.status_code == 401
    assert reuse.headers["www-authenticate"].startswith("Bearer")
    # Both holders are out: the rotated refresh token and the session's access tokens.
    assert (await refresh(client, rotated["refresh_token"])).status_code == 401
    assert await me(client, rotated["access_token"]) == 401
    assert await me(client, alice.access_token) == 401
    assert (await stored(app, rotated["refresh_token"])).revoked_at is not None
    # Other sessions of the same user are untouched; a new login works.
    assert (await login(client, alice.email)).status_code == 200


async def test_reuse_revokes_only_that_family(client: httpx.AsyncClient, alice: Account) -> None:
    other_session = (await login(client, alice.email)).json()
    await refresh(client, alice.refresh_token)
    assert (await refresh(client, alice.refresh_token)).status_code == 401
    assert await me(client, other_session["access_token"]) == 200
    assert (await refresh(client, other_session["refresh_token"])).status_code == 200


async def test_unknown_and_expired_refresh_tokens_are_401(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    assert (await refresh(client, "not-a-token")).status_code == 401
    async with runtime_of(app).sessionmaker() as session:
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.token_digest == token_digest(alice.refresh_token))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    assert (await refresh(client, alice.refresh_token)).status_code == 401


async def test_an_access_token_is_not_a_refresh_token(
    client: httpx.AsyncClient, alice: Account
) -> None:
    assert (await refresh(client, alice.access_token)).status_code == 401


async def test_logout_ends_the_session(client: httpx.AsyncClient, alice: Account) -> None:
    other_session = (await login(client, alice.email)).json()
    response = await client.post("/api/auth/logout", json={"refresh_token": alice.refresh_token})
    assert response.status_code == 204
    assert response.content == b""
    assert (await refresh(client, alice.refresh_token)).status_code == 401
    assert await me(client, alice.access_token) == 401
    assert await me(client, other_session["access_token"]) == 200


async def test_logout_is_idempotent_and_says_nothing_about_unknown_tokens(
    client: httpx.AsyncClient, alice: Account
) -> None:
    for token in (alice.refresh_token, alice.refresh_token, "never-issued"):
        response = await client.post("/api/auth/logout", json={"refresh_token": token})
        assert response.status_code == 204


async def test_logout_after_rotation_ends_the_session(
    client: httpx.AsyncClient, alice: Account
) -> None:
    rotated = (await refresh(client, alice.refresh_token)).json()
    await client.post("/api/auth/logout", json={"refresh_token": rotated["refresh_token"]})
    assert await me(client, rotated["access_token"]) == 401


async def test_two_concurrent_refreshes_with_one_token_count_as_reuse(
    client: httpx.AsyncClient, alice: Account
) -> None:
    first, second = await asyncio.gather(
        refresh(client, alice.refresh_token), refresh(client, alice.refresh_token)
    )
    assert sorted([first.status_code, second.status_code]) == [200, 401]
    winner = first if first.status_code == 200 else second
    assert (await refresh(client, winner.json()["refresh_token"])).status_code == 401
