"""Generation events on the wire as Server-Sent Events, with heartbeats while idle."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi.sse import KEEPALIVE_COMMENT, format_sse_event

from genai_service.generations.events import GenerationEvent
from genai_service.kit.async_iterators import close_iterator
from genai_service.kit.errors import AppError
from genai_service.kit.problems import PROBLEM_TYPE_PREFIX

GENERATION_ID_HEADER = "X-Generation-ID"


def encode_event(event: GenerationEvent) -> bytes:
    return format_sse_event(
        event=event.type, data_str=json.dumps(event.data, separators=(",", ":")), id=str(event.id)
    )


def encode_problem(error: AppError) -> bytes:
    """Why no further event can be read (Redis unreachable), as a last `error` event whose data
    is a problem. It has no id, so a client resuming with `Last-Event-ID` loses nothing."""
    problem = {
        "type": PROBLEM_TYPE_PREFIX + error.slug,
        "title": error.title,
        "status": error.status_code,
        "detail": error.detail,
    }
    return format_sse_event(event="error", data_str=json.dumps(problem, separators=(",", ":")))


async def sse_stream(
    events: AsyncIterator[GenerationEvent], *, heartbeat_seconds: float
) -> AsyncIterator[bytes]:
    """Each event with its `id:`; a comment line whenever no event came for `heartbeat_seconds`.

    Stopping the stream (the client went away) stops only the reading: the generation goes on.
    A failure to read on ends the stream with `encode_problem`, never a cut connection.
    """

    async def next_event() -> GenerationEvent:
        return await anext(events)

    pending: asyncio.Task[GenerationEvent] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.create_task(next_event())
            done, _ = await asyncio.wait({pending}, timeout=heartbeat_seconds)
            if not done:
                yield KEEPALIVE_COMMENT
                continue
            finished, pending = pending, None
            try:
                event = finished.result()
            except StopAsyncIteration:
                return
            except AppError as error:
                yield encode_problem(error)
                return
            yield encode_event(event)
    finally:
        if pending is not None:
            pending.cancel()
            await asyncio.wait({pending})
        await close_iterator(events)
