"""The liveness of generations: this process's renewed, other processes' orphans given up.

Every third of the liveness period, a process renews the heartbeat of the generations it
writes, stops those ended meanwhile by someone else (another process gave them up, or their
conversation was deleted), and gives up the orphans it finds (`orphans`): running generations
whose writer went silent.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from loguru import logger
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from genai_service.generations.events import EventLog
from genai_service.generations.orphans import OrphanCutoff, announce_given_up, give_up
from genai_service.generations.replies import ReplySink, StoredReply
from genai_service.generations.repository import GenerationRepository
from genai_service.kit.db import utcnow
from genai_service.kit.errors import AppError
from genai_service.kit.tasks import BackgroundLoop
from genai_service.models.conversation import GenerationStatus


class Heartbeat:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        events: EventLog,
        replies: ReplySink,
        *,
        liveness_seconds: float,
        writing: Callable[[], set[uuid.UUID]],
    ) -> None:
        """`writing`: the generations this process writes now."""
        self._sessionmaker = sessionmaker
        self._events = events
        self._replies = replies
        self._liveness_seconds = liveness_seconds
        self._writing = writing
        self._loop = BackgroundLoop(self._beat, name="generation-heartbeat")

    def start(self) -> None:
        """Sweep at once (for generations a stopped server left running; start-up does not wait
        for it), then beat until `stop`."""
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def fail_stale(self, *, conversation_id: uuid.UUID | None = None) -> int:
        """Give up the running generations whose writer is gone (see `orphans`), each with a
        failed reply saying so; never one this process writes. Returns how many there were."""
        now = utcnow()
        cutoff = OrphanCutoff.at(now, self._liveness_seconds)
        status = GenerationStatus.FAILED
        given_up: list[tuple[uuid.UUID, StoredReply]] = []
        async with self._sessionmaker.begin() as session:
            candidates = await GenerationRepository(session).abandoned(
                cutoff.condition(), excluding=self._writing(), conversation_id=conversation_id
            )
            for generation in candidates:
                reply = await give_up(session, generation, status, now, cutoff, self._replies)
                if reply is not None:
                    given_up.append((generation.id, reply))
        for generation_id, reply in given_up:
            await announce_given_up(self._events, generation_id, status, reply)
        if given_up:
            logger.warning("gave up {} generation(s) whose server stopped", len(given_up))
        return len(given_up)

    async def _beat(self) -> None:
        await self._sweep()
        while True:
            await self._loop.pause(self._liveness_seconds / 3)
            if self._loop.stopping:
                return
            try:
                await self._renew()
            except (SQLAlchemyError, OSError, AppError) as error:
                logger.warning("could not renew the running generations' heartbeat: {}", error)
            await self._sweep()

    async def _sweep(self) -> None:
        try:
            await self.fail_stale()
        except (SQLAlchemyError, OSError, AppError) as error:
            logger.warning("could not look for interrupted generations: {}", error)

    async def _renew(self) -> None:
        writing = self._writing()
        if not writing:
            return
        async with self._sessionmaker.begin() as session:
            running = await GenerationRepository(session).renew(writing, utcnow())
        for generation_id in writing - running:
            if generation_id in self._writing():
                logger.debug("generation {} was ended elsewhere; stopping it", generation_id)
                await self._events.request_cancel(generation_id)
