from __future__ import annotations

import uuid
from collections.abc import Mapping

from sqlalchemy import false, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from genai_service.kit.db import insert_with_conflicts, utcnow
from genai_service.models.limits import CallerLimits
from genai_service.models.user import Role, User


class LimitsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def of_user(self, user_id: uuid.UUID) -> CallerLimits | None:
        return await self.session.scalar(
            select(CallerLimits)
            .where(CallerLimits.user_id == user_id)
            .execution_options(populate_existing=True)  # `put` writes around the session
        )

    async def of_key(self, api_key_id: uuid.UUID) -> CallerLimits | None:
        return await self.session.scalar(
            select(CallerLimits)
            .where(CallerLimits.api_key_id == api_key_id)
            .execution_options(populate_existing=True)
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

    async def put(
        self,
        values: Mapping[str, int | None],
        *,
        user_id: uuid.UUID | None = None,
        api_key_id: uuid.UUID | None = None,
    ) -> None:
        """Set the limits of one user or one key, replacing theirs; concurrent puts do not
        collide (`INSERT ... ON CONFLICT DO UPDATE` on the subject's unique column)."""
        subject = "user_id" if user_id is not None else "api_key_id"
        insert = insert_with_conflicts(self.session, CallerLimits).values(
            id=uuid.uuid4(),
            user_id=user_id,
            api_key_id=api_key_id,
            updated_at=utcnow(),
            **values,
        )
        await self.session.execute(
            insert.on_conflict_do_update(
                index_elements=[subject],
                set_={**values, "updated_at": insert.excluded.updated_at},
            )
        )

    async def add(self, limits: CallerLimits) -> CallerLimits:
        self.session.add(limits)
        await self.session.flush()
        return limits

    async def delete(self, limits: CallerLimits) -> None:
        await self.session.delete(limits)
        await self.session.flush()
