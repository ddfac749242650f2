from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from loguru import logger
from sqlalchemy.ext.asyncio import AsyncSession

from genai_service.conversations.repository import ConversationRepository, MessageRepository
from genai_service.conversations.schemas import ConversationCreate, ConversationUpdate
from genai_service.conversations.turns import ConversationNotFound
from genai_service.generations.events import EventLog, EventsExpired
from genai_service.generations.repository import GenerationRepository
from genai_service.inference.base import ModelNotFound
from genai_service.inference.registry import ModelRegistry
from genai_service.kit.db import utcnow
from genai_service.kit.errors import BadRequest
from genai_service.kit.pagination import PageParams
from genai_service.models.conversation import Conversation, Message
from genai_service.models.user import User


class UnknownModel(BadRequest):
    title = "Unknown model"
    slug = "unknown-model"


def stored_documents(value: Any) -> Any:
    """`documents` as JSON can hold it: `None`, `"all"` or a list of id strings."""
    if value is None or value == "all":
        return value
    return [str(item) for item in value] or None


class ConversationService:
    def __init__(self, session: AsyncSession, models: ModelRegistry, events: EventLog) -> None:
        self.conversations = ConversationRepository(session)
        self.messages = MessageRepository(session)
        self.generations = GenerationRepository(session)
        self.models = models
        self.events = events

    async def create(self, owner: User, data: ConversationCreate) -> Conversation:
        self._check_model(data.model)
        now = utcnow()
        conversation = await self.conversations.add(
            Conversation(
                owner_id=owner.id,
                title=data.title,
                system_prompt=data.system_prompt,
                model=data.model,
                documents=stored_documents(data.documents),
                created_at=now,
                updated_at=now,
                last_activity_at=now,
            )
        )
        logger.debug("conversation {} created by user {}", conversation.id, owner.id)
        return conversation

    async def get(self, owner: User, conversation_id: uuid.UUID) -> Conversation:
        conversation = await self.conversations.get_for_owner(conversation_id, owner.id)
        if conversation is None:
            raise ConversationNotFound("No such conversation.")
        return conversation

    async def list_for(
        self, owner: User, params: PageParams, *, query: str | None
    ) -> tuple[Sequence[Conversation], int]:
        return await self.conversations.list_for_owner(
            owner.id, query=query, offset=params.offset, limit=params.limit
        )

    async def update(
        self, owner: User, conversation_id: uuid.UUID, data: ConversationUpdate
    ) -> Conversation:
        conversation = await self.get(owner, conversation_id)
        changes = data.model_dump(exclude_unset=True)
        if "model" in changes:
            self._check_model(changes["model"])
        if "documents" in changes:
            changes["documents"] = stored_documents(changes["documents"])
        for name, value in changes.items():
            setattr(conversation, name, value)
        await self.conversations.flush()
        return conversation

    async def delete(self, owner: User, conversation_id: uuid.UUID) -> None:
        """Delete the conversation with its messages and generations. A reply being written is
        stopped and dropped: its writer's final write waits for this transaction (the locked
        row) and then finds the generation gone."""
        conversation = await self.get(owner, conversation_id)
        running = await self.generations.running_for_conversation(conversation.id, for_update=True)
        await self.conversations.delete(conversation)
        if running is not None:
            try:
                await self.events.request_cancel(running.id)
            except EventsExpired:
                # Another process writes it (or none does): it stops at its next heartbeat.
                logger.debug("generation {} has no writer in this process", running.id)
        logger.debug("conversation {} deleted by user {}", conversation.id, owner.id)

    async def list_messages(
        self, owner: User, conversation_id: uuid.UUID, params: PageParams
    ) -> tuple[Sequence[Message], int]:
        conversation = await self.get(owner, conversation_id)
        return await self.messages.list_for_conversation(
            conversation.id, offset=params.offset, limit=params.limit
        )

    def _check_model(self, name: str | None) -> None:
        if name is None:
            return
        try:
            self.models.chat(name)
        except ModelNotFound as error:
            raise UnknownModel(error.detail) from None
