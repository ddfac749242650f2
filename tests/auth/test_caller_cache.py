"""The cache of checked callers behind model routes: what it keeps, for how long, and when not.

The first half drives `CallerCache` directly with counted checks and a hand-moved clock; the
second uses the API on both databases: every change that refuses a credential refuses it on the
very next model request, although the credential was checked (and cached) a moment before.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import update

from genai_service.app import create_app
from genai_service.auth.caller_cache import CallerCache
from genai_service.auth.errors import InvalidCredentials
from genai_service.auth.principal import Principal
from genai_service.kit.db import utcnow
from genai_service.models.user import User
from genai_service.runtime import runtime_of
from tests.conftest import client_for, make_fake_models
from tests.identity import (
    PASSWORD,
    Account,
    bearer,
    login,
    new_account,
    new_api_key,
    settings_with_auth,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def a_user() -> User:
    return User(id=uuid.uuid4(), email=f"{uuid.uuid4().hex[:8]}@example.com", hashed_password="x")


class CountedCheck:
    """A credential check that answers `principal` (or raises `error`) and counts its calls."""

    def __init__(
        self,
        principal: Principal | None = None,
        error: Exception | None = None,
        *,
        gated: bool = False,
    ) -> None:
        self.principal = principal
        self.error = error
        self.calls = 0
        self.gate = asyncio.Event() if gated else None
        """With a gate, each check waits for it: a check "under way" for as long as a test needs."""

    async def __call__(self) -> Principal:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        assert self.principal is not None
        return self.principal


def open_gate(check: CountedCheck) -> None:
    assert check.gate is not None
    check.gate.set()


async def test_a_checked_credential_is_not_checked_again_until_the_ttl_passes() -> None:
    clock = Clock()
    cache = CallerCache(5.0, clock=clock)
    user = a_user()
    check = CountedCheck(Principal(user=user))
    assert (await cache.principal_for("gsk_a", check)).user is user
    clock.now += 4.9
    assert (await cache.principal_for("gsk_a", check)).user is user
    assert check.calls == 1
    clock.now += 0.2
    assert (await cache.principal_for("gsk_a", check)).user is user
    assert check.calls == 2


async def test_an_entry_never_outlives_the_credential() -> None:
    clock = Clock()
    cache = CallerCache(60.0, clock=clock)
    check = CountedCheck(Principal(user=a_user(), expires_at=utcnow() + timedelta(seconds=2)))
    await cache.principal_for("token", check)
    clock.now += 2.5  # within the ttl, past the token's expiry
    await cache.principal_for("token", check)
    assert check.calls == 2

    expired = CountedCheck(Principal(user=a_user(), expires_at=utcnow() - timedelta(seconds=1)))
    await cache.principal_for("expired", expired)
    await cache.principal_for("expired", expired)
    assert expired.calls == 2


async def test_concurrent_requests_with_one_credential_share_one_check() -> None:
    cache = CallerCache(5.0)
    user = a_user()
    check = CountedCheck(Principal(user=user), gated=True)
    waiting = [asyncio.create_task(cache.principal_for("gsk_a", check)) for _ in range(20)]
    await asyncio.sleep(0.01)
    open_gate(check)
    assert all(found.user is user for found in await asyncio.gather(*waiting))
    assert check.calls == 1


async def test_a_refused_credential_is_refused_to_every_waiter_and_never_cached() -> None:
    cache = CallerCache(5.0)
    check = CountedCheck(error=InvalidCredentials(), gated=True)
    waiting = [asyncio.create_task(cache.principal_for("gsk_bad", check)) for _ in range(3)]
    await asyncio.sleep(0.01)
    open_gate(check)
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(result, InvalidCredentials) for result in results)
    with pytest.raises(InvalidCredentials):
        await cache.principal_for("gsk_bad", check)
    assert (check.calls, len(cache)) == (2, 0)


async def test_a_waiter_that_goes_away_does_not_cancel_the_check_of_the_others() -> None:
    cache = CallerCache(5.0)
    user = a_user()
    check = CountedCheck(Principal(user=user), gated=True)
    leaving = asyncio.create_task(cache.principal_for("gsk_a", check))
    staying = asyncio.create_task(cache.principal_for("gsk_a", check))
    await asyncio.sleep(0.01)
    leaving.cancel()
    open_gate(check)
    assert (await staying).user is user
    assert leaving.cancelled()
    assert (check.calls, len(cache)) == (1, 1)


async def test_forgetting_a_user_drops_their_entries_only() -> None:
    cache = CallerCache(5.0)
    carol, dave = a_user(), a_user()
    carol_check = CountedCheck(Principal(user=carol))
    dave_check = CountedCheck(Principal(user=dave))
    for credential in ("carol-token", "gsk_carol"):
        await cache.principal_for(credential, carol_check)
    await cache.principal_for("gsk_dave", dave_check)
    cache.forget_user(carol.id)
    assert len(cache) == 1
    await cache.principal_for("gsk_carol", carol_check)
    await cache.principal_for("gsk_dave", dave_check)
    assert (carol_check.calls, dave_check.calls) == (3, 1)


async def test_a_check_that_read_before_a_change_is_not_stored_after_it() -> None:
    cache = CallerCache(5.0)
    user = a_user()
    check = CountedCheck(Principal(user=user), gated=True)
    before = asyncio.create_task(cache.principal_for("gsk_a", check))
    await asyncio.sleep(0.01)  # the check has read the old rows ...
    cache.forget_user(user.id)  # ... and the change commits before it finishes
    after = asyncio.create_task(cache.principal_for("gsk_a", check))  # a check of its own
    await asyncio.sleep(0.01)
    open_gate(check)
    await asyncio.gather(before, after)
    assert check.calls == 2
    assert len(cache) == 1  # only the check started after the change was stored
    await cache.principal_for("gsk_a", check)
    assert check.calls == 2


async def test_a_ttl_of_zero_checks_every_time() -> None:
    cache = CallerCache(0)
    check = CountedCheck(Principal(user=a_user()))
    for _ in range(3):
        await cache.principal_for("gsk_a", check)
    assert (check.calls, len(cache)) == (3, 0)


async def test_a_full_cache_drops_expired_then_oldest_entries() -> None:
    clock = Clock()
    cache = CallerCache(5.0, max_entries=3, clock=clock)
    for name in ("a", "b"):
        await cache.principal_for(name, CountedCheck(Principal(user=a_user())))
    clock.now += 10  # a and b have expired
    for name in ("c", "d", "e", "f"):
        await cache.principal_for(name, CountedCheck(Principal(user=a_user())))
    assert len(cache) == 3
    oldest = CountedCheck(Principal(user=a_user()))
    await cache.principal_for("c", oldest)  # c was the oldest live entry: dropped for f
    assert oldest.calls == 1


# Through the API, on both databases.


async def models_status(client: httpx.AsyncClient, credential: str) -> int:
    return (await client.get("/v1/models", headers=bearer(credential))).status_code


async def test_a_revoked_key_is_refused_at_once(
    app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    key = await new_api_key(client, alice)
    assert await models_status(client, key["secret"]) == 200
    assert len(runtime_of(app).caller_cache) == 1
    response = await client.delete(f"/api/keys/{key['id']}", headers=alice.headers)
    assert response.status_code == 204
    assert await models_status(client, key["secret"]) == 401
    assert await models_status(client, alice.access_token) == 200  # her session goes on


async def test_signing_out_refuses_the_access_token_at_once(
    client: httpx.AsyncClient, alice: Account
) -> None:
    assert await models_status(client, alice.access_token) == 200
    response = await client.post("/api/auth/logout", json={"refresh_token": alice.refresh_token})
    assert response.status_code == 204
    assert await models_status(client, alice.access_token) == 401


async def test_a_reused_refresh_token_refuses_the_session_at_once(
    client: httpx.AsyncClient, alice: Account
) -> None:
    assert await models_status(client, alice.access_token) == 200
    first = await client.post("/api/auth/refresh", json={"refresh_token": alice.refresh_token})
    assert first.status_code == 200
    rotated = first.json()["access_token"]
    assert await models_status(client, rotated) == 200
    reused = await client.post("/api/auth/refresh", json={"refresh_token": alice.refresh_token})
    assert reused.status_code == 401
    assert await models_status(client, alice.access_token) == 401
    assert await models_status(client, rotated) == 401


async def test_a_new_password_refuses_the_other_sessions_at_once(
    client: httpx.AsyncClient, alice: Account
) -> None:
    other = (await login(client, alice.email)).json()["access_token"]
    assert await models_status(client, other) == 200
    response = await client.patch(
        "/api/users/me",
        json={"password": "Another-Horse-7", "current_password": PASSWORD},
        headers=alice.headers,
    )
    assert response.status_code == 200
    assert await models_status(client, other) == 401
    assert await models_status(client, alice.access_token) == 200


async def test_a_change_that_rolls_back_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    key = await new_api_key(client, alice)
    assert await models_status(client, key["secret"]) == 200
    async with runtime_of(app).sessionmaker() as session:
        runtime_of(app).caller_cache.forget_user_on_commit(session, uuid.UUID(alice.id))
        await session.rollback()
    assert len(runtime_of(app).caller_cache) == 1


async def test_a_change_made_by_another_process_applies_within_the_ttl(
    tmp_path: Path, database_url: str
) -> None:
    """Here the other process is a session the cache never hears of (the CLI, another worker)."""
    settings = settings_with_auth(tmp_path, database_url, caller_cache_seconds=0.3)
    application = create_app(settings, models=make_fake_models())
    async with LifespanManager(application), client_for(application) as client:
        carol = await new_account(application, client, "carol")
        assert await models_status(client, carol.access_token) == 200
        async with runtime_of(application).sessionmaker.begin() as session:
            await session.execute(
                update(User).where(User.id == uuid.UUID(carol.id)).values(is_active=False)
            )
        await asyncio.sleep(0.35)
        assert await models_status(client, carol.access_token) == 401
