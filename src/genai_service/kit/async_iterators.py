"""Async iterators that may hold resources (a model's sequence slot, a subscription): closing
them promptly, and merging several."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
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
