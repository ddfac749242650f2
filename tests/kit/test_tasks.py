"""Stopping a background loop that talks to Redis: a cancellation lost in a Redis call (Python
3.11's `wait_for`) is delivered again, so the loop ends every time."""

from __future__ import annotations

import asyncio
import uuid

from loguru import logger

from genai_service.kit.redis_client import SharedRedis
from genai_service.kit.tasks import cancel_and_wait
from genai_service.settings import RedisSettings

TRIALS = 20


async def test_a_loop_of_redis_commands_is_stopped_every_time(redis_url: str) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    redis = SharedRedis.from_settings(RedisSettings(url=redis_url, key_prefix=prefix))
    key = redis.key("counter")
    rounds: list[int] = []

    async def loop() -> None:
        while True:
            await redis.client.incr(key)
            rounds[-1] += 1

    try:
        for trial in range(TRIALS):
            rounds.append(0)
            task = asyncio.create_task(loop())
            await asyncio.sleep(0.001 + 0.004 * trial / TRIALS)
            async with asyncio.timeout(5):
                await cancel_and_wait(task)
            assert task.cancelled()
            stopped_at = rounds[-1]
            await asyncio.sleep(0.01)
            assert rounds[-1] == stopped_at  # nothing ran after it ended
        assert sum(rounds) > 0
    finally:
        await redis.client.delete(key)
        await redis.close()


async def test_a_loop_that_failed_is_logged_not_raised() -> None:
    async def broken() -> None:
        raise RuntimeError("broken")

    lines: list[str] = []
    sink = logger.add(lines.append, format="{message}")
    try:
        task = asyncio.create_task(broken(), name="broken-loop")
        await asyncio.sleep(0)
        await cancel_and_wait(task)
    finally:
        logger.remove(sink)
    assert isinstance(task.exception(), RuntimeError)
    assert any("broken-loop had failed" in line for line in lines)
