from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from genai_service.models.user import User


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    async def get_by_email(self, email: str) -> User | None:
        """`email` must already be normalised (lower case)."""
        result = await self.session.execute(select(User).where(User.email == email))
        return result.scalar_one_or_none()

    async def add(self, user: User) -> User:
        """Insert now, so a duplicate email surfaces here as an `IntegrityError`."""
        self.session.add(user)
        await self.session.flush()
        return user

    async def flush(self) -> None:
        await self.session.flush()

    async def list_page(self, *, offset: int, limit: int) -> tuple[Sequence[User], int]:
        total = await self.session.scalar(select(func.count()).select_from(User))
        result = await self.session.execute(
            select(User).order_by(User.created_at, User.id).offset(offset).limit(limit)
        )
        return result.scalars().all(), total or 0
