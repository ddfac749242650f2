"""Redis goes away under a server whose rate limits it counts: model calls held to a rate limit
answer `503` `rate-limits-unavailable` with `Retry-After` (OpenAI's error shape under `/v1`, a
problem elsewhere), never a count of the process's own; once Redis is back, they are counted
again (by this Redis, which keeps nothing on disk, from a full bucket)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from genai_service.settings import RedisSettings, Settings
from tests.conftest import make_settings
from tests.guards.support import chat, set_limits, started_app
from tests.identity import Account
from tests.redis_server import RedisServer


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
    redis = RedisSettings(url=redis_server.url, key_prefix="rate-outage:", timeout=1.0)
    return make_settings(tmp_path, database_url, redis=redis)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async for application in started_app(settings):
        yield application


async def test_model_calls_answer_503_while_redis_is_away_and_count_again_after(
    app: FastAPI, client: httpx.AsyncClient, redis_server: RedisServer, alice: Account
) -> None:
    await set_limits(app, user_id=alice.id, requests_per_minute=3)
    first = await client.post("/v1/chat/completions", json=chat(), headers=alice.headers)
    assert first.status_code == 200, first.text
    assert first.headers["x-ratelimit-remaining-requests"] == "2"

    redis_server.stop()
    refused = await client.post("/v1/chat/completions", json=chat(), headers=alice.headers)
    assert refused.status_code == 503
    assert int(refused.headers["Retry-After"]) >= 1
    error = refused.json()["error"]
    assert error["code"] == "rate_limits_unavailable"
    assert "Redis" in error["message"]
    search = await client.post("/api/search", json={"query": "anything"}, headers=alice.headers)
    assert search.status_code == 503
    assert search.headers["content-type"] == "application/problem+json"
    problem = search.json()
    assert problem["type"].endswith(":rate-limits-unavailable")
    assert search.headers["Retry-After"]

    redis_server.start()
    again = await client.post("/v1/chat/completions", json=chat(), headers=alice.headers)
    assert again.status_code == 200, again.text
    assert again.headers["x-ratelimit-remaining-requests"] == "2"
