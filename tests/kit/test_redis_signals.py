"""Signals between processes over Redis pub/sub: delivered to every listener, a quiet channel is
not a lost one, and a lost connection is reported (and listening resumes) when Redis comes
back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from genai_service.kit.redis_client import SharedRedis
from genai_service.kit.redis_signals import RedisSignals
from genai_service.settings import RedisSettings
from tests.polling import wait_until
from tests.redis_server import RedisServer

PING_SECONDS = 0.2


@pytest.fixture
async def own_redis() -> AsyncIterator[RedisServer]:
    """A Redis of this test's own, to stop and start again."""
    server = RedisServer()
    await asyncio.to_thread(server.start)
    yield server
    await asyncio.to_thread(server.remove)


def listener(url: str, prefix: str) -> tuple[SharedRedis, RedisSignals, list[str], list[int]]:
    """One process's signals: its own connections, the deployment's prefix."""
    settings = RedisSettings(url=url, key_prefix=prefix, timeout=1.0)
    redis = SharedRedis.from_settings(settings)
    signals = RedisSignals(redis, ping_seconds=PING_SECONDS)
    received: list[str] = []
    gaps: list[int] = []
    signals.listen("news", received.append)
    signals.on_gap(lambda: gaps.append(1))
    return redis, signals, received, gaps


async def test_every_listener_hears_a_signal_and_quiet_is_not_a_gap(redis_url: str) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    redis, signals, received, gaps = listener(redis_url, prefix)
    second_redis, second, heard, _ = listener(redis_url, prefix)
    await signals.start()
    await second.start()
    try:
        await asyncio.sleep(PING_SECONDS * 6)  # several pings answered
        assert signals.connected
        assert gaps == [1]  # the one gap before listening began
        await signals.publish("news", "hello")
        await wait_until(lambda: received == ["hello"] and heard == ["hello"], within=5)
    finally:
        await signals.stop()
        await second.stop()
        await redis.close()
        await second_redis.close()


async def test_a_lost_connection_is_a_gap_and_listening_resumes(own_redis: RedisServer) -> None:
    redis, signals, received, gaps = listener(own_redis.url, "test:")
    await signals.start()
    try:
        assert signals.connected
        await asyncio.to_thread(own_redis.stop)
        await wait_until(lambda: not signals.connected, within=5)
        assert len(gaps) == 2
        await asyncio.to_thread(own_redis.start)
        await wait_until(lambda: signals.connected, within=10)
        assert len(gaps) == 3
        await signals.publish("news", "back")
        await wait_until(lambda: received == ["back"], within=5)
    finally:
        await signals.stop()
        await redis.close()
