"""The event log, in the process and on Redis: numbering, replay after an id, live following,
retention, cancel requests — and, on Redis, all of it across two processes' clients."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from genai_service.generations.events import (
    EventLog,
    EventsExpired,
    GenerationEvent,
    InMemoryEventLog,
)
from genai_service.generations.redis_events import RedisEventLog
from genai_service.kit.redis_client import SharedRedis
from genai_service.kit.redis_signals import RedisSignals
from genai_service.settings import RedisSettings
from tests.polling import wait_until

MakeLog = Callable[..., Awaitable[EventLog]]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def open_redis_log(settings: RedisSettings, opened: list[Any], retention: float) -> EventLog:
    redis = SharedRedis.from_settings(settings)
    signals = RedisSignals(redis, ping_seconds=settings.timeout)
    log = RedisEventLog(redis, signals, retention_seconds=retention, running_seconds=60)
    await signals.start()
    assert signals.connected
    opened.append((signals, redis))
    return log


async def close_all(opened: list[Any]) -> None:
    for signals, redis in opened:
        await signals.stop()
        await redis.close()


@pytest.fixture
async def make_log(shared_state: RedisSettings) -> AsyncIterator[MakeLog]:
    """A factory of the event log, in the process and on Redis."""
    opened: list[Any] = []

    async def make(retention: float = 60.0) -> EventLog:
        if shared_state.url is None:
            return InMemoryEventLog(retention)
        return await open_redis_log(shared_state, opened, retention)

    yield make
    await close_all(opened)


@pytest.fixture
async def two_processes(redis_url: str) -> AsyncIterator[tuple[EventLog, EventLog]]:
    """The Redis event log as two processes see it (each its own clients and signals)."""
    settings = RedisSettings(url=redis_url, key_prefix=f"test-{uuid.uuid4().hex[:12]}:")
    opened: list[Any] = []
    yield (
        await open_redis_log(settings, opened, 60.0),
        await open_redis_log(settings, opened, 60.0),
    )
    await close_all(opened)


async def collect(log: EventLog, generation_id: uuid.UUID, after: int = 0) -> list[int]:
    return [event.id async for event in await log.subscribe(generation_id, after=after)]


async def test_events_are_numbered_and_replayed_after_an_id(make_log: MakeLog) -> None:
    log = await make_log()
    generation = uuid.uuid4()
    await log.open(generation)
    appended = [await log.append(generation, "delta", {"text": str(n)}) for n in range(4)]
    await log.append(generation, "done", {"status": "completed"})
    assert [event.id for event in appended] == [1, 2, 3, 4]
    assert await collect(log, generation) == [1, 2, 3, 4, 5]
    assert await collect(log, generation, after=3) == [4, 5]
    assert await collect(log, generation, after=5) == []
    assert await collect(log, generation, after=9) == []
    replayed = [event async for event in await log.subscribe(generation, after=2)]
    assert replayed[0] == GenerationEvent(id=3, type="delta", data={"text": "2"})
    assert replayed[-1] == GenerationEvent(id=5, type="done", data={"status": "completed"})
    with pytest.raises(RuntimeError):
        await log.append(generation, "delta", {"text": "late"})


async def test_a_reader_follows_live_events(make_log: MakeLog) -> None:
    log = await make_log()
    generation = uuid.uuid4()
    await log.open(generation)
    await log.append(generation, "generation", {})
    received: list[GenerationEvent] = []

    async def read() -> None:
        async for event in await log.subscribe(generation):
            received.append(event)

    reader = asyncio.create_task(read())
    await wait_until(lambda: len(received) == 1, within=5)
    await log.append(generation, "delta", {"text": "a"})
    await wait_until(lambda: len(received) == 2, within=5)
    assert [event.type for event in received] == ["generation", "delta"]
    assert not reader.done()
    await log.append(generation, "done", {})
    await asyncio.wait_for(reader, 5)
    assert [event.type for event in received] == ["generation", "delta", "done"]


async def test_an_opened_log_without_events_is_followed_not_expired(make_log: MakeLog) -> None:
    log = await make_log()
    generation = uuid.uuid4()
    await log.open(generation)
    events = await log.subscribe(generation)
    first = asyncio.ensure_future(anext(events))
    await log.append(generation, "generation", {"n": 1})
    assert (await asyncio.wait_for(first, 5)).id == 1


async def test_finished_logs_expire_after_the_retention(make_log: MakeLog) -> None:
    log = await make_log(retention=0.5)
    running, finished = uuid.uuid4(), uuid.uuid4()
    for generation in (running, finished):
        await log.open(generation)
        await log.append(generation, "generation", {})
    ended = time.monotonic()
    await log.append(finished, "done", {})
    assert await collect(log, finished) == [1, 2]
    expired = False
    while not expired:
        assert time.monotonic() - ended < 10, "the finished log was kept too long"
        try:
            await log.subscribe(finished)
        except EventsExpired:
            expired = True
        await asyncio.sleep(0.05)
    assert time.monotonic() - ended >= 0.45
    with pytest.raises(EventsExpired):
        await log.append(finished, "delta", {})
    # A running generation's log is kept however long it runs.
    assert (await log.subscribe(running)) is not None
    with pytest.raises(EventsExpired):
        await log.subscribe(uuid.uuid4())


async def test_in_memory_retention_follows_its_clock() -> None:
    clock = Clock()
    log = InMemoryEventLog(60, clock=clock)
    generation = uuid.uuid4()
    await log.open(generation)
    await log.append(generation, "done", {})
    clock.now += 59
    assert await collect(log, generation) == [1]
    clock.now += 2
    with pytest.raises(EventsExpired):
        await log.subscribe(generation)


async def test_cancel_requests_reach_the_writer(make_log: MakeLog) -> None:
    log = await make_log()
    generation = uuid.uuid4()
    await log.open(generation)
    waiting = asyncio.create_task(log.wait_for_cancel(generation))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await log.request_cancel(generation)
    await asyncio.wait_for(waiting, 5)


async def test_a_log_written_by_one_process_is_read_and_cancelled_by_another(
    two_processes: tuple[EventLog, EventLog],
) -> None:
    writer, reader = two_processes
    generation = uuid.uuid4()
    await writer.open(generation)
    await writer.append(generation, "generation", {"id": str(generation)})
    await writer.append(generation, "delta", {"text": "Hello"})
    cancelled = asyncio.create_task(writer.wait_for_cancel(generation))
    received: list[GenerationEvent] = []

    async def follow() -> None:
        async for event in await reader.subscribe(generation, after=1):
            received.append(event)

    following = asyncio.create_task(follow())
    await wait_until(lambda: len(received) == 1, within=5)
    assert received[0] == GenerationEvent(id=2, type="delta", data={"text": "Hello"})
    await reader.request_cancel(generation)
    await asyncio.wait_for(cancelled, 5)
    await writer.append(generation, "done", {"status": "cancelled"})
    await asyncio.wait_for(following, 5)
    assert [event.id for event in received] == [2, 3]


async def test_a_cancel_requested_before_the_writer_waits_is_not_lost(
    two_processes: tuple[EventLog, EventLog],
) -> None:
    writer, other = two_processes
    generation = uuid.uuid4()
    await writer.open(generation)
    await other.request_cancel(generation)
    await asyncio.wait_for(writer.wait_for_cancel(generation), 5)
