"""The in-memory event log: numbering, replay after an id, live following, retention."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from genai_service.generations.events import EventsExpired, GenerationEvent, InMemoryEventLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def collect(log: InMemoryEventLog, generation_id: uuid.UUID, after: int = 0) -> list[int]:
    return [event.id async for event in await log.subscribe(generation_id, after=after)]


async def test_events_are_numbered_and_replayed_after_an_id() -> None:
    log = InMemoryEventLog(60)
    generation = uuid.uuid4()
    await log.open(generation)
    appended = [await log.append(generation, "delta", {"text": str(n)}) for n in range(4)]
    await log.append(generation, "done", {})
    assert [event.id for event in appended] == [1, 2, 3, 4]
    assert await collect(log, generation) == [1, 2, 3, 4, 5]
    assert await collect(log, generation, after=3) == [4, 5]
    assert await collect(log, generation, after=5) == []
    with pytest.raises(RuntimeError):
        await log.append(generation, "delta", {"text": "late"})


async def test_a_reader_follows_live_events() -> None:
    log = InMemoryEventLog(60)
    generation = uuid.uuid4()
    await log.open(generation)
    await log.append(generation, "generation", {})
    received: list[GenerationEvent] = []

    async def read() -> None:
        async for event in await log.subscribe(generation):
            received.append(event)

    reader = asyncio.create_task(read())
    await asyncio.sleep(0.01)
    assert [event.id for event in received] == [1]
    await log.append(generation, "delta", {"text": "a"})
    await asyncio.sleep(0.01)
    assert [event.type for event in received] == ["generation", "delta"]
    assert not reader.done()
    await log.append(generation, "done", {})
    await asyncio.wait_for(reader, 1)
    assert [event.type for event in received] == ["generation", "delta", "done"]


async def test_finished_logs_expire_after_the_retention() -> None:
    clock = Clock()
    log = InMemoryEventLog(60, clock=clock)
    running, finished = uuid.uuid4(), uuid.uuid4()
    for generation in (running, finished):
        await log.open(generation)
        await log.append(generation, "generation", {})
    await log.append(finished, "done", {})
    clock.now += 59
    assert await collect(log, finished) == [1, 2]
    clock.now += 2
    with pytest.raises(EventsExpired):
        await log.subscribe(finished)
    # A running generation's log is kept however long it runs.
    assert (await log.subscribe(running)) is not None
    with pytest.raises(EventsExpired):
        await log.subscribe(uuid.uuid4())


async def test_cancel_requests_reach_the_writer() -> None:
    log = InMemoryEventLog(60)
    generation = uuid.uuid4()
    await log.open(generation)
    waiting = asyncio.create_task(log.wait_for_cancel(generation))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    await log.request_cancel(generation)
    await asyncio.wait_for(waiting, 1)
