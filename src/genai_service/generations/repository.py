from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import or_, select, update
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

    async def get(self, generation_id: uuid.UUID, *, for_update: bool = False) -> Generation | None:
        """`for_update`: lock the row until the transaction ends (PostgreSQL), so a concurrent
        `abandoned` skips it and a concurrent writer waits."""
        return await self.session.get(
            Generation, generation_id, populate_existing=True, with_for_update=for_update
        )

    async def get_for_owner(
        self, generation_id: uuid.UUID, owner_id: uuid.UUID
    ) -> Generation | None:
        result = await self.session.execute(
            select(Generation)
            .where(Generation.id == generation_id, Generation.owner_id == owner_id)
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def running_for_conversation(self, conversation_id: uuid.UUID) -> Generation | None:
        result = await self.session.execute(
            select(Generation).where(
                Generation.conversation_id == conversation_id,
                Generation.status == GenerationStatus.RUNNING,
            )
        )
        return result.scalar_one_or_none()

    async def abandoned(
        self,
        *,
        deadline_before: datetime,
        silent_since: datetime,
        excluding: Collection[uuid.UUID] = (),
        conversation_id: uuid.UUID | None = None,
    ) -> Sequence[Generation]:
        """Running generations whose writer is gone: past their deadline, or no heartbeat since
        `silent_since`. `excluding`: generations the caller is writing itself."""
        query = select(Generation).where(
            Generation.status == GenerationStatus.RUNNING,
            or_(
                Generation.deadline_at < deadline_before,
                Generation.heartbeat_at < silent_since,
            ),
        )
        if excluding:
            query = query.where(Generation.id.not_in(excluding))
        if conversation_id is not None:
            query = query.where(Generation.conversation_id == conversation_id)
        result = await self.session.execute(query.with_for_update(skip_locked=True))
        return result.scalars().all()

    async def renew(self, generation_ids: Collection[uuid.UUID], now: datetime) -> None:
        """The heartbeat of generations still running, written by the process running them."""
        await self.session.execute(
            update(Generation)
            .where(Generation.id.in_(generation_ids), Generation.status == GenerationStatus.RUNNING)
            .values(heartbeat_at=now)
            .execution_options(synchronize_session=False)
        )

    async def flush(self) -> None:
        await self.session.flush()
