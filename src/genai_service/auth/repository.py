from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from genai_service.models.refresh_token import RefreshToken


class RefreshTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, token: RefreshToken) -> None:
        self.session.add(token)
        await self.session.flush()

    async def get_by_digest(self, digest: str) -> RefreshToken | None:
        result = await self.session.execute(
            select(RefreshToken).where(RefreshToken.token_digest == digest)
        )
        return result.scalar_one_or_none()

    async def mark_used(self, token_id: uuid.UUID, now: datetime) -> bool:
        """Claim the token for one rotation. `False` when it was used or revoked meanwhile."""
        result = await self.session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.id == token_id,
                RefreshToken.used_at.is_(None),
                RefreshToken.revoked_at.is_(None),
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return cast("CursorResult[Any]", result).rowcount == 1

    async def revoke_family(self, family_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )

    async def revoke_families_of_user(
        self, user_id: uuid.UUID, now: datetime, *, keep: uuid.UUID | None = None
    ) -> None:
        """Revoke every session of a user, except the family `keep` (the caller's own)."""
        statement = update(RefreshToken).where(
            RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None)
        )
        if keep is not None:
            statement = statement.where(RefreshToken.family_id != keep)
        await self.session.execute(
            statement.values(revoked_at=now).execution_options(synchronize_session=False)
        )

    async def family_is_active(self, family_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """A session lasts while its family has an unrevoked token (expired or not: access
        tokens carry their own expiry). It must be the user's own session."""
        active = await self.session.scalar(
            select(
                exists().where(
                    RefreshToken.family_id == family_id,
                    RefreshToken.user_id == user_id,
                    RefreshToken.revoked_at.is_(None),
                )
            )
        )
        return bool(active)
