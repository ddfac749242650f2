from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from genai_service.models.api_key import ApiKey


class ApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, key: ApiKey) -> ApiKey:
        self.session.add(key)
        await self.session.flush()
        return key

    async def get_for_owner(self, key_id: uuid.UUID, owner_id: uuid.UUID) -> ApiKey | None:
        """An unrevoked key of this owner; `None` for anyone else's."""
        result = await self.session.execute(
            select(ApiKey).where(
                ApiKey.id == key_id, ApiKey.user_id == owner_id, ApiKey.revoked_at.is_(None)
            )
        )
        return result.scalar_one_or_none()

    async def get_unrevoked(self, key_id: uuid.UUID) -> ApiKey | None:
        """An unrevoked key, whoever owns it (for admins)."""
        return await self.session.scalar(
            select(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        )

    async def list_for_owner(
        self, owner_id: uuid.UUID, *, offset: int, limit: int
    ) -> tuple[Sequence[ApiKey], int]:
        condition = (ApiKey.user_id == owner_id) & ApiKey.revoked_at.is_(None)
        total = await self.session.scalar(select(func.count()).select_from(ApiKey).where(condition))
        result = await self.session.execute(
            select(ApiKey)
            .where(condition)
            .order_by(ApiKey.created_at.desc(), ApiKey.id)
            .offset(offset)
            .limit(limit)
        )
        return result.scalars().all(), total or 0

    async def get_unrevoked_by_digest(self, digest: str) -> ApiKey | None:
        """The key with its owner loaded (authentication needs both)."""
        result = await self.session.execute(
            select(ApiKey)
            .options(joinedload(ApiKey.user))
            .where(ApiKey.key_digest == digest, ApiKey.revoked_at.is_(None))
        )
        return result.scalar_one_or_none()

    async def revoke(self, key: ApiKey, now: datetime) -> None:
        key.revoked_at = now
        await self.session.flush()

    async def touch(self, key: ApiKey, now: datetime) -> None:
        key.last_used_at = now
        await self.session.flush()
