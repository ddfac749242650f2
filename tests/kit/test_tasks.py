"""Stopping background loops: between two steps, so that a database session is never cut short;
a cancellation lost in a Redis call (Python 3.11's `wait_for`) is delivered again, so a loop
that has to be cancelled ends every time."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from loguru import logger
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from genai_service.kit import tasks
from genai_service.kit.db import create_engine
from genai_service.kit.redis_client import SharedRedis
from genai_service.kit.tasks import BackgroundLoop, cancel_and_wait, uninterrupted
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


@dataclass(frozen=True)
class Counter:
    """A SQLite database holding one counter, written by the tests' loops and from elsewhere."""

    path: Path
    sessionmaker: async_sessionmaker[AsyncSession]

    async def value(self) -> int:
        async with self.sessionmaker() as session:
            return int((await session.execute(text("SELECT n FROM counter"))).scalar_one())

    def write_elsewhere(self) -> None:
        """Count one from another connection: "database is locked" if a connection of the
        tests' still holds the lock."""
        other = sqlite3.connect(self.path, timeout=0.5)
        try:
            other.execute("UPDATE counter SET n = n + 1")
            other.commit()
        finally:
            other.close()


@pytest.fixture
async def counter(tmp_path: Path) -> AsyncIterator[Counter]:
    path = tmp_path / "counter.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        await connection.execute(text("INSERT INTO counter VALUES (0)"))
    try:
        yield Counter(path, async_sessionmaker(engine))
    finally:
        await engine.dispose()


async def test_a_loop_of_database_sessions_stops_between_them_and_leaves_no_lock(
    counter: Counter,
) -> None:
    """Cancelling such a loop (once, or again until it ended) cut sessions short, and their
    SQLite connections kept the write lock: after 4 to 9 stops in 40 here."""
    steps = 0

    async def count() -> None:
        nonlocal steps
        while not loop.stopping:
            async with counter.sessionmaker.begin() as session:
                await session.execute(text("UPDATE counter SET n = n + 1"))
                await session.execute(text("SELECT n FROM counter"))
            steps += 1

    for trial in range(TRIALS):
        loop = BackgroundLoop(count, name="counting")
        loop.start()
        await asyncio.sleep(0.001 + 0.05 * trial / TRIALS)
        async with asyncio.timeout(5):
            await loop.stop()
        counter.write_elsewhere()  # on the event loop's thread: nothing of the loop runs on
    assert await counter.value() == steps + TRIALS > TRIALS


async def test_a_pause_ends_when_the_loop_is_stopped() -> None:
    paused: list[float] = []

    async def slow() -> None:
        while not loop.stopping:
            await loop.pause(3600)
            paused.append(asyncio.get_running_loop().time())

    loop = BackgroundLoop(slow, name="slow")
    loop.start()
    await asyncio.sleep(0.01)
    stopped_at = asyncio.get_running_loop().time()
    async with asyncio.timeout(1):
        await loop.stop()
    assert len(paused) == 1
    assert paused[0] >= stopped_at


async def test_a_pause_ends_when_it_is_woken() -> None:
    wake = asyncio.Event()
    woken = asyncio.Event()

    async def waiting() -> None:
        await loop.pause(3600, wake=wake)
        woken.set()

    loop = BackgroundLoop(waiting, name="waiting")
    loop.start()
    await asyncio.sleep(0.01)
    assert not woken.is_set()
    wake.set()
    async with asyncio.timeout(1):
        await woken.wait()
    await loop.stop()


async def test_a_loop_that_does_not_stop_in_time_is_cancelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tasks, "STOP_GRACE_SECONDS", 0.1)

    async def deaf() -> None:
        await asyncio.Event().wait()  # never asks whether it is stopping

    lines: list[str] = []
    sink = logger.add(lines.append, format="{message}")
    loop = BackgroundLoop(deaf, name="deaf")
    try:
        loop.start()
        await asyncio.sleep(0.01)
        async with asyncio.timeout(2):
            await loop.stop()
    finally:
        logger.remove(sink)
    assert any("deaf did not stop in time" in line for line in lines)


async def test_a_transaction_run_uninterrupted_ends_before_the_cancellation_is_raised(
    counter: Counter,
) -> None:
    committed = 0

    async def increment() -> None:
        nonlocal committed
        async with counter.sessionmaker.begin() as session:
            await session.execute(text("UPDATE counter SET n = n + 1"))
            await asyncio.sleep(0.01)
            await session.execute(text("SELECT n FROM counter"))
        committed += 1

    async def caller() -> None:
        while True:
            await uninterrupted(increment())

    for trial in range(TRIALS):
        task = asyncio.create_task(caller())
        await asyncio.sleep(0.005 + 0.05 * trial / TRIALS)
        task.cancel()
        async with asyncio.timeout(5):
            await asyncio.wait({task})
        assert task.cancelled()
        ended_at = committed
        await asyncio.to_thread(counter.write_elsewhere)
        assert committed == ended_at  # the transaction had ended when the caller did
    assert await counter.value() == committed + TRIALS > TRIALS
