"""Async iterators that may hold resources (a model's sequence slot, a subscription): closing
them promptly, merging several, and reading one ahead in batches."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


async def close_iterator(iterator: AsyncIterator[object]) -> None:
    """Close `iterator` now if it can be closed (an async generator), rather than when it is
    garbage-collected: its `finally` blocks release what it holds."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


@contextlib.asynccontextmanager
async def merged(iterators: list[AsyncIterator[T]]) -> AsyncIterator[AsyncIterator[tuple[int, T]]]:
    """The items of several iterators as they come, each with its iterator's index. Leaving the
    context closes every iterator; the first error of one ends the merged iteration."""
    if len(iterators) == 1:  # the common case needs no tasks
        only = iterators[0]

        async def tagged() -> AsyncIterator[tuple[int, T]]:
            async for item in only:
                yield 0, item

        try:
            yield tagged()
        finally:
            await close_iterator(only)
        return
    queue: asyncio.Queue[tuple[int, T] | BaseException | None] = asyncio.Queue()

    async def pump(index: int, iterator: AsyncIterator[T]) -> None:
        try:
            async for item in iterator:
                await queue.put((index, item))
        except Exception as error:
            await queue.put(error)
        finally:
            await close_iterator(iterator)
            await queue.put(None)

    tasks = [asyncio.create_task(pump(i, iterator)) for i, iterator in enumerate(iterators)]

    async def items() -> AsyncIterator[tuple[int, T]]:
        running = len(tasks)
        while running:
            item = await queue.get()
            if item is None:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item

    try:
        yield items()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@dataclass(frozen=True, slots=True)
class _Ended:
    """The end of an iterator read ahead: `error` if it raised one."""

    error: Exception | None


@contextlib.asynccontextmanager
async def ready_batches(
    iterator: AsyncIterator[T], *, read_ahead: int
) -> AsyncIterator[AsyncIterator[list[T]]]:
    """The items of `iterator` in lists: each list holds every item that became ready while the
    list before it was being handled. Items a source produces at once (several server-sent
    events in one read of a socket) are handled at once, written to a client in one call; an
    item that comes alone is handed on alone, at once, never held for a later one.

    The first item is read in the caller's task, and is the first list on its own: a stream's
    first event goes out as soon as it is ready, not after the reading task's first turn of the
    event loop (and that of the caller, woken by it), each behind every other request's work.
    A task of its own reads the rest, at most `read_ahead` items ahead. The first error ends
    the lists, after the items before it. Leaving the context stops the reading and closes
    `iterator`."""
    queue: asyncio.Queue[T | _Ended] = asyncio.Queue(read_ahead)
    reader: asyncio.Task[None] | None = None

    async def read() -> None:
        end = _Ended(None)
        try:
            async for item in iterator:
                await queue.put(item)
        except Exception as error:
            end = _Ended(error)
        finally:
            await close_iterator(iterator)
        await queue.put(end)

    async def batches() -> AsyncIterator[list[T]]:
        nonlocal reader
        try:
            first = await anext(iterator)
        except StopAsyncIteration:
            return
        reader = asyncio.create_task(read())
        yield [first]
        while True:
            entries = [await queue.get()]
            while not queue.empty():
                entries.append(queue.get_nowait())
            items = [entry for entry in entries if not isinstance(entry, _Ended)]
            if items:
                yield items
            last = entries[-1]
            if isinstance(last, _Ended):
                if last.error is not None:
                    raise last.error
                return

    try:
        yield batches()
    finally:
        if reader is None:
            await close_iterator(iterator)
        else:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
