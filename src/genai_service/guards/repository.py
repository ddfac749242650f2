from __future__ import annotations

import uuid

from sqlalchemy import false, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from genai_service.models.limits import CallerLimits
from genai_service.models.user import Role, User


class LimitsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def of_user(self, user_id: uuid.UUID) -> CallerLimits | None:
        return await self.session.scalar(
            select(CallerLimits).where(CallerLimits.user_id == user_id)
        )

    async def of_key(self, api_key_id: uuid.UUID) -> CallerLimits | None:
        return await self.session.scalar(
            select(CallerLimits).where(CallerLimits.api_key_id == api_key_id)
        )

    async def of_caller(
        self, user_id: uuid.UUID, api_key_id: uuid.UUID | None
    ) -> tuple[Role, CallerLimits | None, CallerLimits | None] | None:
        """The user's role, its own limits and its key's, in one query; `None` for no user."""
        user_limits = aliased(CallerLimits)
        key_limits = aliased(CallerLimits)
        query = (
            select(User.role, user_limits, key_limits)
            .outerjoin(user_limits, user_limits.user_id == User.id)
            .outerjoin(
                key_limits,
                key_limits.api_key_id == api_key_id if api_key_id is not None else false(),
            )
            .where(User.id == user_id)
        )
        row = (await self.session.execute(query)).one_or_none()
        return None if row is None else (row[0], row[1], row[2])

    async def add(self, limits: CallerLimits) -> CallerLimits:
        self.session.add(limits)
        await self.session.flush()
        return limits

    async def delete(self, limits: CallerLimits) -> None:
        await self.session.delete(limits)
        await self.session.flush()
