"""The replies of generations, written as conversation messages (the runner's `ReplySink`)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from genai_service.conversations.repository import ConversationRepository, MessageRepository
from genai_service.conversations.schemas import MessageRead
from genai_service.conversations.titles import TitleWriter
from genai_service.gateway.gateway import ModelGateway
from genai_service.generations.plan import GenerationPlan
from genai_service.generations.replies import GenerationOutcome, StoredReply
from genai_service.kit.db import utcnow
from genai_service.models.conversation import (
    Generation,
    GenerationStatus,
    Message,
    MessageRole,
    MessageStatus,
)
from genai_service.settings import ConversationSettings

INTERRUPTED = "The server stopped before this reply was finished."

_MESSAGE_STATUS = {
    GenerationStatus.COMPLETED: MessageStatus.COMPLETED,
    GenerationStatus.CANCELLED: MessageStatus.CANCELLED,
    GenerationStatus.FAILED: MessageStatus.FAILED,
}


def message_data(message: Message) -> dict[str, Any]:
    return MessageRead.model_validate(message).model_dump(mode="json")


def _stored(message: Message) -> StoredReply:
    return StoredReply(message.id, message_data(message))


class ConversationReplies:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        gateway: ModelGateway,
        settings: ConversationSettings,
    ) -> None:
        self._gateway = gateway
        self._titles = TitleWriter(sessionmaker, settings.title_max_tokens)

    async def store(
        self, session: AsyncSession, plan: GenerationPlan, outcome: GenerationOutcome
    ) -> StoredReply:
        now = utcnow()
        usage = outcome.usage
        message = await MessageRepository(session).add(
            Message(
                conversation_id=plan.conversation_id,
                role=MessageRole.ASSISTANT,
                content=outcome.text,
                model=plan.model_name,
                prompt_tokens=usage.prompt_tokens if usage else plan.prompt_tokens,
                completion_tokens=usage.completion_tokens if usage else None,
                latency_ms=outcome.latency_ms,
                status=_MESSAGE_STATUS[outcome.status],
                error=outcome.error,
                citations=plan.citations,
                created_at=now,
            )
        )
        await ConversationRepository(session).touch(plan.conversation_id, now)
        return _stored(message)

    async def store_interrupted(
        self, session: AsyncSession, generation: Generation, status: GenerationStatus
    ) -> StoredReply:
        message = await MessageRepository(session).add(
            Message(
                conversation_id=generation.conversation_id,
                role=MessageRole.ASSISTANT,
                content="",
                model=generation.model,
                status=_MESSAGE_STATUS[status],
                error=INTERRUPTED,
                created_at=utcnow(),
            )
        )
        return _stored(message)

    async def read(self, session: AsyncSession, reply_id: uuid.UUID) -> StoredReply | None:
        message = await MessageRepository(session).get(reply_id)
        return None if message is None else _stored(message)

    async def completed(self, plan: GenerationPlan, text: str) -> None:
        """Title an untitled conversation from its first exchange."""
        if plan.title_question is None:
            return
        model = self._gateway.chat(plan.caller, "title", plan.model_name)
        await self._titles.write(model, plan.conversation_id, plan.title_question, text)
