from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from genai_service.models.response import StoredResponse


class ResponseRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, response: StoredResponse) -> StoredResponse:
        self.session.add(response)
        await self.session.flush()
        return response

    async def get_for_owner(self, response_id: str, owner_id: uuid.UUID) -> StoredResponse | None:
        result = await self.session.execute(
            select(StoredResponse).where(
                StoredResponse.id == response_id, StoredResponse.owner_id == owner_id
            )
        )
        return result.scalar_one_or_none()

    async def delete_for_owner(self, response_id: str, owner_id: uuid.UUID) -> bool:
        """Whether there was such a response to delete."""
        result = await self.session.execute(
            delete(StoredResponse)
            .where(StoredResponse.id == response_id, StoredResponse.owner_id == owner_id)
            .returning(StoredResponse.id)
        )
        return result.scalar_one_or_none() is not None
