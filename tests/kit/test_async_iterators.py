"""`ready_batches`: the first item read in the caller's task, then the items ready together in
one list, none held for a later one, at most `read_ahead` read ahead, the source's error after
its items, and the source closed on leaving."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from genai_service.kit.async_iterators import ready_batches


async def _bursts(sizes: list[int], gate: asyncio.Event, log: list[str]) -> AsyncIterator[int]:
    """Items in bursts of `sizes`, each burst ready at once; before each burst after the first,
    waits for `gate` (and clears it)."""
    item = 0
    try:
        for number, size in enumerate(sizes):
            if number:
                await gate.wait()
                gate.clear()
            for _ in range(size):
                yield item
                item += 1
    finally:
        log.append("closed")


async def test_items_ready_together_come_in_one_list_and_none_waits_for_a_later_one() -> None:
    gate, log = asyncio.Event(), []
    async with ready_batches(_bursts([4, 2], gate, log), read_ahead=8) as batches:
        assert await anext(batches) == [0]
        # The second burst is not ready (the gate is shut), yet the first came: nothing held.
        assert await anext(batches) == [1, 2, 3]
        gate.set()
        assert [batch async for batch in batches] == [[4, 5]]
    assert log == ["closed"]


async def test_the_first_item_is_read_in_the_callers_task_and_the_rest_in_another() -> None:
    readers: list[asyncio.Task[object] | None] = []

    async def source() -> AsyncIterator[int]:
        for item in range(3):
            readers.append(asyncio.current_task())
            yield item

    async with ready_batches(source(), read_ahead=4) as batches:
        assert [item async for batch in batches for item in batch] == [0, 1, 2]
    caller = asyncio.current_task()
    assert readers[0] is caller
    assert readers[1] is not caller
    assert readers[2] is readers[1]


async def test_an_empty_source_gives_no_list_and_is_closed() -> None:
    gate, log = asyncio.Event(), []
    async with ready_batches(_bursts([0], gate, log), read_ahead=4) as batches:
        assert [batch async for batch in batches] == []
    assert log == ["closed"]


async def test_a_burst_comes_in_lists_of_at_most_read_ahead_items() -> None:
    gate, log = asyncio.Event(), []
    async with ready_batches(_bursts([10], gate, log), read_ahead=4) as batches:
        lists = [batch async for batch in batches]
    assert [item for batch in lists for item in batch] == list(range(10))
    assert len(lists) >= 3
    assert max(len(batch) for batch in lists) <= 4


async def test_the_sources_error_comes_after_its_items() -> None:
    async def failing() -> AsyncIterator[int]:
        yield 1
        yield 2
        raise ValueError("broken")

    received: list[int] = []

    async def consume() -> None:
        async with ready_batches(failing(), read_ahead=4) as batches:
            async for batch in batches:
                received.extend(batch)

    with pytest.raises(ValueError, match="broken"):
        await consume()
    assert received == [1, 2]


async def test_leaving_early_closes_the_source() -> None:
    gate, log = asyncio.Event(), []
    async with ready_batches(_bursts([2, 2], gate, log), read_ahead=4) as batches:
        assert await anext(batches) == [0]
        assert await anext(batches) == [1]
    # The source was waiting for its second burst: leaving stopped it there.
    assert log == ["closed"]


async def test_a_cancelled_reader_closes_the_source() -> None:
    gate, log = asyncio.Event(), []
    started = asyncio.Event()

    async def consume() -> None:
        async with ready_batches(_bursts([1, 1], gate, log), read_ahead=4) as batches:
            async for _ in batches:
                started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert log == ["closed"]
