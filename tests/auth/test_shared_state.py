"""Login throttles and the caller cache on Redis: several server processes count the same
attempts and forget the same callers, and a Redis outage is a 503, never a per-process count."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from genai_service.app import create_app
from genai_service.auth.caller_cache import CallerCache
from genai_service.auth.principal import Principal
from genai_service.auth.redis_throttle import RedisFailureWindow
from genai_service.kit.redis_client import SharedRedis
from genai_service.kit.redis_signals import RedisSignals
from genai_service.models.user import Role, User
from genai_service.runtime import runtime_of
from genai_service.settings import RedisSettings, Settings
from tests.conftest import client_for, make_fake_models, second_process
from tests.identity import (
    PASSWORD,
    WRONG_PASSWORD,
    bearer,
    client_at,
    login,
    new_account,
    new_api_key,
    settings_with_auth,
    unique_email,
)
from tests.polling import wait_until
from tests.redis_server import RedisServer


def on_redis(url: str) -> RedisSettings:
    return RedisSettings(url=url, key_prefix=f"test-{uuid.uuid4().hex[:12]}:", timeout=1.0)


@pytest.fixture
async def shared_redis(redis_url: str) -> AsyncIterator[SharedRedis]:
    redis = SharedRedis.from_settings(on_redis(redis_url))
    yield redis
    await redis.close()


async def test_a_redis_window_counts_up_to_its_limit_and_says_how_long_to_wait(
    shared_redis: SharedRedis,
) -> None:
    window = RedisFailureWindow(shared_redis, "test", limit=3, window=60)
    for _ in range(3):
        assert await window.hit("k") == 0
    wait = await window.hit("k")
    assert 59 < wait <= 60
    assert await window.hit("k") > 0  # refused hits are not counted, but still refused
    assert await window.hit("other") == 0
    await window.forgive("k")
    assert await window.hit("k") == 0
    await window.clear("k")
    assert [await window.hit("k") for _ in range(4)][-1] > 0


async def test_a_redis_window_forgets_attempts_that_left_it(shared_redis: SharedRedis) -> None:
    window = RedisFailureWindow(shared_redis, "short", limit=1, window=0.3)
    assert await window.hit("k") == 0
    assert await window.hit("k") > 0
    await asyncio.sleep(0.35)
    assert await window.hit("k") == 0


async def test_simultaneous_attempts_never_pass_the_limit_together(
    shared_redis: SharedRedis,
) -> None:
    window = RedisFailureWindow(shared_redis, "burst", limit=5, window=60)
    waits = await asyncio.gather(*(window.hit("k") for _ in range(40)))
    assert sum(1 for wait in waits if wait == 0) == 5


def shared_settings(tmp_path: Path, database_url: str, redis_url: str, **auth: object) -> Settings:
    return settings_with_auth(tmp_path, database_url, **auth).model_copy(
        update={"redis": on_redis(redis_url)}
    )


@pytest.fixture
def two_processes_settings(tmp_path: Path, database_url: str, redis_url: str) -> Settings:
    return shared_settings(
        tmp_path,
        database_url,
        redis_url,
        login_failures_per_account_and_client=4,
        caller_cache_seconds=300,
    )


@pytest.fixture
async def process_a(two_processes_settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(two_processes_settings, models=make_fake_models())
    async with LifespanManager(app, startup_timeout=60):
        yield app


@pytest.fixture
async def process_b(two_processes_settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(second_process(two_processes_settings), models=make_fake_models())
    async with LifespanManager(app, startup_timeout=60):
        yield app


async def test_failed_logins_on_two_processes_count_in_one_window(
    process_a: FastAPI, process_b: FastAPI
) -> None:
    email = unique_email("target")
    async with client_at(process_a, "203.0.113.5") as a, client_at(process_b, "203.0.113.5") as b:
        statuses = [
            (await login(http, email, WRONG_PASSWORD)).status_code for http in (a, b, a, b, a, b)
        ]
    assert statuses == [401, 401, 401, 401, 429, 429]


async def test_a_key_revoked_on_one_process_is_refused_on_the_other_at_once(
    process_a: FastAPI, process_b: FastAPI
) -> None:
    """Both caches hold the key (for five minutes); the revoke on A reaches B before its
    response does."""
    async with client_for(process_a) as a, client_for(process_b) as b:
        alice = await new_account(process_a, a, "alice")
        key = await new_api_key(a, alice)
        for http in (a, b):
            assert (await http.get("/v1/models", headers=bearer(key["secret"]))).status_code == 200
        assert len(runtime_of(process_b).caller_cache) == 1
        assert (await a.delete(f"/api/keys/{key['id']}", headers=alice.headers)).status_code == 204
        assert (await b.get("/v1/models", headers=bearer(key["secret"]))).status_code == 401
        assert (await b.get("/v1/models", headers=alice.headers)).status_code == 200


async def test_a_new_password_on_one_process_signs_out_other_sessions_on_the_other(
    process_a: FastAPI, process_b: FastAPI
) -> None:
    async with client_for(process_a) as a, client_for(process_b) as b:
        carol = await new_account(process_a, a, "carol")
        other_session = (await login(a, carol.email)).json()["access_token"]
        assert (await b.get("/v1/models", headers=bearer(other_session))).status_code == 200
        response = await a.patch(
            "/api/users/me",
            json={"password": "Another-Horse-7", "current_password": PASSWORD},
            headers=carol.headers,
        )
        assert response.status_code == 200
        assert (await b.get("/v1/models", headers=bearer(other_session))).status_code == 401
        assert (await b.get("/v1/models", headers=carol.headers)).status_code == 200


async def test_a_user_deactivated_on_one_process_is_refused_on_the_other_at_once(
    process_a: FastAPI, process_b: FastAPI
) -> None:
    """B's cache holds dave's session and key (for five minutes); an admin deactivates him on
    A, and B refuses both at the next request, before any entry expires."""
    async with client_for(process_a) as a, client_for(process_b) as b:
        admin = await new_account(process_a, a, "admin", role=Role.ADMIN)
        dave = await new_account(process_a, a, "dave")
        key = await new_api_key(a, dave)
        for credential in (dave.headers, bearer(key["secret"])):
            assert (await b.get("/v1/models", headers=credential)).status_code == 200
        response = await a.patch(
            f"/api/users/{dave.id}", json={"is_active": False}, headers=admin.headers
        )
        assert response.status_code == 200, response.text
        for credential in (dave.headers, bearer(key["secret"])):
            assert (await b.get("/v1/models", headers=credential)).status_code == 401
        assert (await b.get("/v1/models", headers=admin.headers)).status_code == 200


def principal() -> Principal:
    user = User(id=uuid.uuid4(), email=f"{uuid.uuid4().hex[:8]}@example.com", hashed_password="x")
    return Principal(user=user)


async def test_the_cache_is_not_trusted_while_its_signals_may_be_missed(
    shared_redis: SharedRedis,
) -> None:
    signals = RedisSignals(shared_redis, ping_seconds=1.0)
    cache = CallerCache(300, signals=signals)
    calls = 0
    checked = principal()

    async def check() -> Principal:
        nonlocal calls
        calls += 1
        return checked

    await cache.principal_for("token", check)  # not listening yet: not cached
    await cache.principal_for("token", check)
    assert calls == 2
    await signals.start()
    try:
        await cache.principal_for("token", check)
        await cache.principal_for("token", check)
        assert calls == 3
    finally:
        await signals.stop()
    assert not signals.connected
    await cache.principal_for("token", check)
    assert calls == 4


async def test_a_change_elsewhere_is_seen_by_the_next_request_before_its_signal(
    redis_url: str,
) -> None:
    """B's signal of the change may be read after B's next request: that request still checks
    the database, because it reads the change mark A set before answering."""
    settings = on_redis(redis_url)
    shared = [SharedRedis.from_settings(settings) for _ in range(2)]
    deaf = SharedRedis.from_settings(on_redis(redis_url))  # B's signals never hear A's
    signals_a = RedisSignals(shared[0], ping_seconds=1.0)
    signals_b = RedisSignals(deaf, ping_seconds=1.0)
    a = CallerCache(300, signals=signals_a, redis=shared[0])
    b = CallerCache(300, signals=signals_b, redis=shared[1])
    calls = 0
    checked = principal()

    async def check() -> Principal:
        nonlocal calls
        calls += 1
        return checked

    await signals_a.start()
    await signals_b.start()
    try:
        for _ in range(3):
            await b.principal_for("token", check)
        assert calls == 1
        await a._tell_others(checked.user.id)
        await b.principal_for("token", check)
        assert calls == 2
        await b.principal_for("token", check)
        assert calls == 2
    finally:
        for signals in (signals_a, signals_b):
            await signals.stop()
        for redis in (*shared, deaf):
            await redis.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_redis_outage_is_a_503_and_readiness_says_so(
    tmp_path: Path, database_url: str
) -> None:
    """Redis goes away under a running server: logins answer 503 `redis-unavailable` (never a
    count of this process's own), cancel and event streams too, `/readyz` names Redis; once
    Redis is back, everything is as before."""
    server = RedisServer()
    server.start()
    try:
        settings = shared_settings(tmp_path, database_url, server.url)
        app = create_app(settings, models=make_fake_models())
        async with LifespanManager(app, startup_timeout=60), client_for(app) as http:
            await runtime_of(app).models.start()
            alice = await new_account(app, http, "alice")
            assert (await http.get("/readyz")).json()["checks"]["redis"] is True
            server.stop()
            refused = await login(http, alice.email)
            assert refused.status_code == 503, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["type"].endswith("redis-unavailable")
            assert refused.headers["Retry-After"]
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["redis"] is False
            events = await http.get(
                f"/api/generations/{uuid.uuid4()}/events", headers=alice.headers
            )
            assert events.status_code == 404  # ownership is checked first, in the database
            conversation = await http.post("/api/conversations", json={}, headers=alice.headers)
            turn = await http.post(
                f"/api/conversations/{conversation.json()['id']}/messages",
                json={"content": "hello"},
                headers=alice.headers,
            )
            assert turn.status_code == 503, turn.text
            assert turn.json()["type"].endswith("redis-unavailable")
            server.start()
            await wait_until(lambda: listening(app), within=15)
            assert (await login(http, alice.email)).status_code == 200
            assert (await http.get("/readyz")).status_code == 200
    finally:
        server.remove()


def listening(app: FastAPI) -> bool:
    signals = runtime_of(app).signals
    return signals is not None and signals.connected
