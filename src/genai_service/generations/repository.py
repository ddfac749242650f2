from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from genai_service.models.conversation import Generation, GenerationStatus


class GenerationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, generation: Generation) -> Generation:
        """Insert now: a second running generation of a conversation is an `IntegrityError`."""
        self.session.add(generation)
        await self.session.flush()
        return generation

    async def get(self, generation_id: uuid.UUID) -> Generation | None:
        return await self.session.get(Generation, generation_id, populate_existing=True)

    async def get_for_owner(
        self, generation_id: uuid.UUID, owner_id: uuid.UUID
    ) -> Generation | None:
        result = await self.session.execute(
            select(Generation)
            .where(Generation.id == generation_id, Generation.owner_id == owner_id)
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def running_for_conversation(
        self, conversation_id: uuid.UUID, *, for_update: bool = False
    ) -> Generation | None:
        """`for_update`: lock the row until the transaction ends (PostgreSQL), so the writer's
        final `finish` waits for this transaction and then sees what it did."""
        query = select(Generation).where(
            Generation.conversation_id == conversation_id,
            Generation.status == GenerationStatus.RUNNING,
        )
        if for_update:
            query = query.with_for_update()
        result = await self.session.execute(query)
        return result.scalar_one_or_none()

    async def abandoned(
        self,
        orphaned: ColumnElement[bool],
        *,
        excluding: Collection[uuid.UUID] = (),
        conversation_id: uuid.UUID | None = None,
    ) -> Sequence[Generation]:
        """Running generations matching `orphaned` (their writer is gone), skipping rows another
        transaction holds. `excluding`: generations the caller is writing itself."""
        query = select(Generation).where(Generation.status == GenerationStatus.RUNNING, orphaned)
        if excluding:
            query = query.where(Generation.id.not_in(excluding))
        if conversation_id is not None:
            query = query.where(Generation.conversation_id == conversation_id)
        result = await self.session.execute(query.with_for_update(skip_locked=True))
        return result.scalars().all()

    async def finish(
        self,
        generation_id: uuid.UUID,
        status: GenerationStatus,
        now: datetime,
        *,
        unless_alive: ColumnElement[bool] | None = None,
    ) -> bool:
        """End a running generation as `status`: the one conditional write that decides who ends
        it (its writer, a sweep, a cancel, a conversation delete). False, changing nothing, when
        it is no longer running or no longer exists — or, with `unless_alive`, when it no longer
        matches that condition (its writer showed life)."""
        statement = (
            update(Generation)
            .where(Generation.id == generation_id, Generation.status == GenerationStatus.RUNNING)
            .values(status=status, finished_at=now)
            .execution_options(synchronize_session=False)
        )
        if unless_alive is not None:
            statement = statement.where(unless_alive)
        result = await self.session.execute(statement)
        return cast("CursorResult[Any]", result).rowcount == 1

    async def attach_reply(self, generation_id: uuid.UUID, message_id: uuid.UUID) -> None:
        await self.session.execute(
            update(Generation)
            .where(Generation.id == generation_id)
            .values(assistant_message_id=message_id)
            .execution_options(synchronize_session=False)
        )

    async def renew(self, generation_ids: Collection[uuid.UUID], now: datetime) -> set[uuid.UUID]:
        """The heartbeat of generations still running, written by the process running them.
        Returns those still running: the others were ended elsewhere (or deleted)."""
        result = await self.session.execute(
            update(Generation)
            .where(Generation.id.in_(generation_ids), Generation.status == GenerationStatus.RUNNING)
            .values(heartbeat_at=now)
            .returning(Generation.id)
            .execution_options(synchronize_session=False)
        )
        return set(result.scalars().all())
