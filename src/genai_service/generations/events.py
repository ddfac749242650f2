"""The numbered events of each generation, kept for replay: the `EventLog` interface.

Everything that crosses between the writer of a generation and its readers goes through this
interface: the events themselves and requests to cancel. The in-memory log serves one process;
a log shared by several workers (Redis streams, for instance) implements the same protocol.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from genai_service.kit.errors import Gone

EventType = Literal["generation", "delta", "done", "error"]
TERMINAL_EVENTS: frozenset[str] = frozenset({"done", "error"})


@dataclass(frozen=True, slots=True)
class GenerationEvent:
    id: int
    """Sequential within one generation, from 1."""
    type: EventType
    data: dict[str, Any]

    @property
    def is_terminal(self) -> bool:
        return self.type in TERMINAL_EVENTS


class EventsExpired(Gone):
    title = "Events expired"
    slug = "generation-events-expired"


class EventLog(Protocol):
    async def open(self, generation_id: uuid.UUID) -> None:
        """Start the (empty) log of a new generation."""
        ...

    async def append(
        self, generation_id: uuid.UUID, type: EventType, data: dict[str, Any]
    ) -> GenerationEvent:
        """Add the next event; a `done` or `error` event ends the log and starts its retention."""
        ...

    async def subscribe(
        self, generation_id: uuid.UUID, *, after: int = 0
    ) -> AsyncIterator[GenerationEvent]:
        """The events after `after`, then new ones as they come, until the terminal event.

        Raises `EventsExpired` at once when the log is unknown or its retention ended.
        """
        ...

    async def request_cancel(self, generation_id: uuid.UUID) -> None:
        """Ask the writer of the generation, wherever it runs, to stop."""
        ...

    async def wait_for_cancel(self, generation_id: uuid.UUID) -> None:
        """Return when a cancel of the generation is requested."""
        ...


@dataclass
class _Stream:
    events: list[GenerationEvent] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    finished_at: float | None = None


class InMemoryEventLog:
    """Event logs of this process's generations, each dropped `retention` seconds after it ended."""

    def __init__(
        self, retention_seconds: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.retention_seconds = retention_seconds
        self._clock = clock
        self._streams: dict[uuid.UUID, _Stream] = {}

    async def open(self, generation_id: uuid.UUID) -> None:
        self._drop_expired()
        self._streams.setdefault(generation_id, _Stream())

    async def append(
        self, generation_id: uuid.UUID, type: EventType, data: dict[str, Any]
    ) -> GenerationEvent:
        stream = self._stream(generation_id)
        if stream.finished_at is not None:
            raise RuntimeError(f"the event log of generation {generation_id} has ended")
        event = GenerationEvent(id=len(stream.events) + 1, type=type, data=data)
        stream.events.append(event)
        if event.is_terminal:
            stream.finished_at = self._clock()
        # Wake every reader, then give later readers a fresh event to wait on.
        stream.changed.set()
        stream.changed = asyncio.Event()
        return event

    async def subscribe(
        self, generation_id: uuid.UUID, *, after: int = 0
    ) -> AsyncIterator[GenerationEvent]:
        stream = self._stream(generation_id)
        return self._follow(stream, after)

    async def _follow(self, stream: _Stream, after: int) -> AsyncIterator[GenerationEvent]:
        position = max(after, 0)
        while True:
            changed = stream.changed
            while position < len(stream.events):
                event = stream.events[position]
                position += 1
                yield event
                if event.is_terminal:
                    return
            if stream.finished_at is not None:
                return
            await changed.wait()

    async def request_cancel(self, generation_id: uuid.UUID) -> None:
        self._stream(generation_id).cancel.set()

    async def wait_for_cancel(self, generation_id: uuid.UUID) -> None:
        await self._stream(generation_id).cancel.wait()

    def _stream(self, generation_id: uuid.UUID) -> _Stream:
        self._drop_expired()
        stream = self._streams.get(generation_id)
        if stream is None:
            raise EventsExpired(
                "The events of this generation are no longer kept (or were kept by another "
                "server process); read the stored messages instead."
            )
        return stream

    def _drop_expired(self) -> None:
        horizon = self._clock() - self.retention_seconds
        expired = [
            key
            for key, stream in self._streams.items()
            if stream.finished_at is not None and stream.finished_at <= horizon
        ]
        for key in expired:
            del self._streams[key]
