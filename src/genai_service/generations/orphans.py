"""Generations whose writer is gone: how to tell them from live ones, and how to end them.

Every process renews the heartbeat of the generations it writes (a third of the liveness period
apart). A running generation is taken as orphaned — its process crashed or was killed — only
when its heartbeat has been silent for the whole liveness period, or when it is well past its
deadline (rows written before heartbeats existed have none). Nothing else can tell a dead
writer from a live one in another process, so nothing else gives a generation up.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from loguru import logger
from sqlalchemy import ColumnElement, or_
from sqlalchemy.ext.asyncio import AsyncSession

from genai_service.generations.events import EventLog, EventsExpired, EventType
from genai_service.generations.replies import ReplySink, StoredReply
from genai_service.generations.repository import GenerationRepository
from genai_service.kit.errors import AppError
from genai_service.models.conversation import Generation, GenerationStatus

STALE_GRACE = timedelta(seconds=30)
"""A running generation this long past its deadline has no writer any more (the server stopped)."""


@dataclass(frozen=True, slots=True)
class OrphanCutoff:
    """The moment before which a generation's silence (or deadline) makes it an orphan."""

    silent_since: datetime
    deadline_before: datetime

    @classmethod
    def at(cls, now: datetime, liveness_seconds: float) -> OrphanCutoff:
        liveness = timedelta(seconds=liveness_seconds)
        return cls(silent_since=now - liveness, deadline_before=now - STALE_GRACE)

    def condition(self) -> ColumnElement[bool]:
        """SQL: the generation's writer is gone (by this cutoff)."""
        return or_(
            Generation.deadline_at < self.deadline_before,
            Generation.heartbeat_at < self.silent_since,
        )

    def orphans(self, generation: Generation) -> bool:
        """Whether `generation`, as read, looks orphaned by this cutoff (`give_up` decides)."""
        if generation.deadline_at < self.deadline_before:
            return True
        return generation.heartbeat_at is not None and generation.heartbeat_at < self.silent_since

    def seconds_until_orphaned(self, generation: Generation) -> int:
        """How much longer a generation that still looks alive must stay silent to be an orphan."""
        remaining = generation.deadline_at - self.deadline_before
        if generation.heartbeat_at is not None:
            remaining = min(remaining, generation.heartbeat_at - self.silent_since)
        return max(math.ceil(remaining.total_seconds()), 1)


async def give_up(
    session: AsyncSession,
    generation: Generation,
    status: GenerationStatus,
    now: datetime,
    cutoff: OrphanCutoff,
    replies: ReplySink,
) -> StoredReply | None:
    """End an orphaned generation as `status` (failed or cancelled) with an empty reply saying
    its server stopped. `None`, writing nothing, when it is not orphaned by `cutoff` any more:
    its writer renewed the heartbeat or ended it meanwhile, or its conversation was deleted.

    The conditional UPDATE comes first, so on SQLite it takes the write lock before anything
    is decided, and on PostgreSQL it waits for (and then re-checks) a concurrent writer's row.
    """
    generations = GenerationRepository(session)
    if not await generations.finish(generation.id, status, now, unless_alive=cutoff.condition()):
        return None
    reply = await replies.store_interrupted(session, generation, status)
    await generations.attach_reply(generation.id, reply.id)
    return reply


GIVEN_UP_DETAIL = (
    "The server process writing this reply stopped; the reply was stored as it was left."
)


async def announce_given_up(
    events: EventLog, generation_id: uuid.UUID, status: GenerationStatus, reply: StoredReply
) -> None:
    """End the event log of a generation given up, so its readers (on any process, when the log
    is shared) stop waiting. Nothing to do when the log went with its process."""
    data = {
        "generation_id": str(generation_id),
        "status": status.value,
        "message": reply.data,
        "detail": GIVEN_UP_DETAIL,
    }
    event_type: EventType = "error" if status is GenerationStatus.FAILED else "done"
    try:
        await events.append(generation_id, event_type, data)
    except (EventsExpired, RuntimeError):
        logger.debug("generation {} has no open event log to end", generation_id)
    except AppError as error:
        logger.warning(
            "the event log of generation {} could not be ended: {}", generation_id, error
        )
