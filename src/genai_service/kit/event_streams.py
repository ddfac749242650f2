"""Server-sent event streams: the headers a streamed reply needs, its events written as they
become ready (those ready together in one go), and a response that writes its first piece in
the request's own task."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from fastapi.sse import EventSourceResponse
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive, Scope, Send

from genai_service.kit.async_iterators import ready_batches
from genai_service.kit.stream_turns import stream_turns

T = TypeVar("T")

NO_BUFFERING = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
"""A streamed reply's headers: no cache, and no buffering in a proxy (nginx) on the way."""
READ_AHEAD = 16
"""How many events of a stream are read ahead of the client, at most: the most written at once.
A burst of events (a remote server sends several in one read) is handled in steps of this
many, and other requests' work runs between the steps."""


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


async def no_turn() -> None:
    """Write at once: a stream outside any order of turns."""


class EventStreamResponse(EventSourceResponse):
    """An event stream whose status line and first piece are written in the request's own task,
    as soon as the endpoint returns. Starlette writes a streamed body from a task of its own,
    beside one that notices the client leaving: one more turn of the event loop, behind every
    other request's work, before the client sees anything. The rest of the body is written so
    here too (with plain asyncio tasks), and a client that leaves ends the stream.

    For streams whose first piece is ready when the response is returned (the routes prime
    their streams, so that admission errors get a status code of their own); the client's
    leaving is noticed once that piece is written."""

    _began = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        await self._begin(send)
        # The rest, each piece at the stream's turn (`kit/stream_turns.py`).
        with stream_turns().opened() as wait_turn:
            writer = self.stream_response(send, wait_turn)
            if _spec_version(scope) >= (2, 4):  # a send to a client that left raises
                try:
                    await writer
                except OSError:
                    raise ClientDisconnect from None
            else:
                await self._until_the_client_leaves(asyncio.create_task(writer), receive)
        if self.background is not None:
            await self.background()

    async def _until_the_client_leaves(self, writer: asyncio.Task[None], receive: Receive) -> None:
        """`writer` writes the rest of the body until it ends or the client leaves, whichever
        comes first (what Starlette does with an anyio task group, whose cancel scopes cost a
        stream more CPU than the two tasks)."""
        listener = asyncio.create_task(self.listen_for_disconnect(receive))
        try:
            await asyncio.wait((writer, listener), return_when=asyncio.FIRST_COMPLETED)
        finally:
            writer.cancel()
            listener.cancel()
            await asyncio.gather(writer, listener, return_exceptions=True)
        if not writer.cancelled() and (error := writer.exception()) is not None:
            raise error

    async def _begin(self, send: Send) -> None:
        pieces = aiter(self.body_iterator)
        self.body_iterator = pieces  # the rest of the body, after the first piece
        await send(self._start())
        self._began = True
        first = await anext(pieces, None)
        if first is not None:
            await send(self._piece(first))

    async def stream_response(
        self, send: Send, wait_turn: Callable[[], Awaitable[None]] = no_turn
    ) -> None:
        if not self._began:
            await send(self._start())
        pieces = aiter(self.body_iterator)
        while True:
            await wait_turn()
            piece = await anext(pieces, None)
            if piece is None:
                break
            await send(self._piece(piece))
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _start(self) -> Message:
        return {
            "type": "http.response.start",
            "status": self.status_code,
            "headers": self.raw_headers,
        }

    def _piece(self, piece: str | bytes | memoryview) -> Message:
        body = piece.encode(self.charset) if isinstance(piece, str) else piece
        return {"type": "http.response.body", "body": body, "more_body": True}


def _spec_version(scope: Scope) -> tuple[int, ...]:
    return tuple(map(int, scope.get("asgi", {}).get("spec_version", "2.0").split(".")))
