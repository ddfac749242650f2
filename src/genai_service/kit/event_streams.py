"""Server-sent event streams: the headers a streamed reply needs, and its events written as they
become ready, those ready together in one go."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from genai_service.kit.async_iterators import ready_batches

T = TypeVar("T")

NO_BUFFERING = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
"""A streamed reply's headers: no cache, and no buffering in a proxy (nginx) on the way."""
READ_AHEAD = 4
"""How many events of a stream are read ahead of the client, at most: the most written at once.
A burst of events (a remote server sends several in one read) is handled in steps of this
many, and other requests have their turn between the steps."""


async def event_stream(
    items: AsyncIterator[T], encode: Callable[[T], bytes]
) -> AsyncIterator[bytes]:
    """The events of `items`, each encoded by `encode`. The events that are ready together are
    joined into one piece of the body: one write to the socket and one pass through the
    middleware, instead of one of each for every event. An event that comes alone is passed on
    at once."""
    async with ready_batches(items, read_ahead=READ_AHEAD) as batches:
        async for batch in batches:
            yield b"".join(map(encode, batch))
