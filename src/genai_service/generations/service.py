from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

from loguru import logger
from sqlalchemy.ext.asyncio import AsyncSession

from genai_service.generations.events import EventLog, EventsExpired, GenerationEvent
from genai_service.generations.orphans import OrphanCutoff, announce_given_up, give_up
from genai_service.generations.replies import ReplySink
from genai_service.generations.repository import GenerationRepository
from genai_service.kit.async_iterators import close_iterator
from genai_service.kit.db import await_after_commit, utcnow
from genai_service.kit.errors import Conflict, NotFound
from genai_service.models.conversation import Generation, GenerationStatus
from genai_service.models.user import User

CANCEL_WAIT_SECONDS = 30.0
"""How long a cancel request waits for the reply to be stored before answering."""


class GenerationNotFound(NotFound):
    title = "Generation not found"
    slug = "generation-not-found"


class GenerationNotRunning(Conflict):
    title = "Generation not running"
    slug = "generation-not-running"


class GenerationRunningElsewhere(Conflict):
    title = "Generation running elsewhere"
    slug = "generation-running-elsewhere"


class GenerationService:
    def __init__(
        self,
        session: AsyncSession,
        events: EventLog,
        replies: ReplySink,
        *,
        liveness_seconds: float,
    ) -> None:
        self.session = session
        self.generations = GenerationRepository(session)
        self.events = events
        self.replies = replies
        self.liveness_seconds = liveness_seconds

    async def get(self, owner: User, generation_id: uuid.UUID) -> Generation:
        generation = await self.generations.get_for_owner(generation_id, owner.id)
        if generation is None:
            raise GenerationNotFound("No such generation.")
        return generation

    async def follow(
        self, owner: User, generation_id: uuid.UUID, *, after: int
    ) -> AsyncIterator[GenerationEvent]:
        """The generation's events after `after`, then live ones; 410 once they expired."""
        generation = await self.get(owner, generation_id)
        return await self.events.subscribe(generation.id, after=after)

    async def cancel(self, owner: User, generation_id: uuid.UUID) -> Generation:
        """Stop a running generation and wait (briefly) until its partial reply is stored.

        A generation whose writer is gone (its process stopped) is stored as cancelled at once.
        Otherwise the request goes through the event log to the writer, wherever it runs when
        the log is shared (Redis); an in-process log reaches only this process's generations,
        so a generation another live process writes is `409` then.
        """
        generation = await self.get(owner, generation_id)
        if generation.status is not GenerationStatus.RUNNING:
            raise GenerationNotRunning(f"The generation is already {generation.status.value}.")
        now = utcnow()
        cutoff = OrphanCutoff.at(now, self.liveness_seconds)
        status = GenerationStatus.CANCELLED
        # Written only when it looks orphaned: on SQLite, any write would hold the database
        # until this request ends, and the writer could not store the reply meanwhile.
        reply = None
        if cutoff.orphans(generation):
            reply = await give_up(self.session, generation, status, now, cutoff, self.replies)
        if reply is not None:
            logger.info("generation {} had no writer; stored as cancelled", generation.id)
            stored = reply
            await_after_commit(
                self.session,
                lambda: announce_given_up(self.events, generation.id, status, stored),
            )
            return await self.get(owner, generation.id)
        try:
            events: AsyncIterator[GenerationEvent] | None = await self.events.subscribe(
                generation.id
            )
        except EventsExpired:
            events = None
        try:
            await self.events.request_cancel(generation.id)
        except EventsExpired:
            current = await self.get(owner, generation.id)
            if current.status is not GenerationStatus.RUNNING:
                return current
            raise _running_elsewhere(current, cutoff) from None
        if events is not None:
            await self._until_ended(generation.id, events)
        return await self.get(owner, generation_id)

    async def _until_ended(
        self, generation_id: uuid.UUID, events: AsyncIterator[GenerationEvent]
    ) -> None:
        try:
            async with asyncio.timeout(CANCEL_WAIT_SECONDS):
                async for event in events:
                    if event.is_terminal:
                        break
        except TimeoutError:
            logger.warning("generation {} is slow to stop after a cancel", generation_id)
        finally:
            await close_iterator(events)


def _running_elsewhere(generation: Generation, cutoff: OrphanCutoff) -> GenerationRunningElsewhere:
    wait = cutoff.seconds_until_orphaned(generation)
    return GenerationRunningElsewhere(
        "Another server process is writing this reply, and without a shared Redis cancel "
        "requests reach only the process that writes it. Cancel it through that process, or "
        f"retry: if that process stopped, the generation can be cancelled in {wait} s.",
        headers={"Retry-After": str(wait)},
    )
