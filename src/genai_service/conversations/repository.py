from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from genai_service.models.conversation import Conversation, Message, MessageStatus


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class ConversationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, conversation: Conversation) -> Conversation:
        self.session.add(conversation)
        await self.session.flush()
        return conversation

    async def get_for_owner(
        self, conversation_id: uuid.UUID, owner_id: uuid.UUID
    ) -> Conversation | None:
        result = await self.session.execute(
            select(Conversation).where(
                Conversation.id == conversation_id, Conversation.owner_id == owner_id
            )
        )
        return result.scalar_one_or_none()

    async def get(self, conversation_id: uuid.UUID) -> Conversation | None:
        return await self.session.get(Conversation, conversation_id)

    async def list_for_owner(
        self, owner_id: uuid.UUID, *, query: str | None, offset: int, limit: int
    ) -> tuple[Sequence[Conversation], int]:
        """Newest activity first; `query` matches titles, case-insensitively."""
        condition = Conversation.owner_id == owner_id
        if query:
            pattern = f"%{_escape_like(query.lower())}%"
            condition &= func.lower(Conversation.title).like(pattern, escape="\\")
        total = await self.session.scalar(
            select(func.count()).select_from(Conversation).where(condition)
        )
        result = await self.session.execute(
            select(Conversation)
            .where(condition)
            .order_by(Conversation.last_activity_at.desc(), Conversation.id)
            .offset(offset)
            .limit(limit)
        )
        return result.scalars().all(), total or 0

    async def flush(self) -> None:
        await self.session.flush()

    async def delete(self, conversation: Conversation) -> None:
        """The conversation, its messages and generations (the foreign keys cascade)."""
        await self.session.execute(delete(Conversation).where(Conversation.id == conversation.id))

    async def touch(self, conversation_id: uuid.UUID, now: datetime) -> None:
        conversation = await self.session.get(Conversation, conversation_id)
        if conversation is not None:
            conversation.last_activity_at = now
            await self.session.flush()

    async def set_title_if_untitled(self, conversation_id: uuid.UUID, title: str) -> bool:
        conversation = await self.session.get(Conversation, conversation_id)
        if conversation is None or conversation.title is not None:
            return False
        conversation.title = title
        await self.session.flush()
        return True


class MessageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, message: Message) -> Message:
        self.session.add(message)
        await self.session.flush()
        return message

    async def get(self, message_id: uuid.UUID) -> Message | None:
        return await self.session.get(Message, message_id)

    async def list_for_conversation(
        self, conversation_id: uuid.UUID, *, offset: int, limit: int
    ) -> tuple[Sequence[Message], int]:
        """Oldest first."""
        condition = Message.conversation_id == conversation_id
        total = await self.session.scalar(
            select(func.count()).select_from(Message).where(condition)
        )
        result = await self.session.execute(
            select(Message)
            .where(condition)
            .order_by(Message.created_at, Message.id)
            .offset(offset)
            .limit(limit)
        )
        return result.scalars().all(), total or 0

    async def count(self, conversation_id: uuid.UUID) -> int:
        total = await self.session.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.conversation_id == conversation_id)
        )
        return total or 0

    async def newest_for_prompt(self, conversation_id: uuid.UUID, limit: int) -> list[Message]:
        """The newest `limit` messages with text a model can read again, oldest first.

        Failed replies are left out; cancelled replies keep the text they had.
        """
        result = await self.session.execute(
            select(Message)
            .where(
                Message.conversation_id == conversation_id,
                Message.status != MessageStatus.FAILED,
                Message.content != "",
            )
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(limit)
        )
        return list(reversed(result.scalars().all()))
