from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from genai_service.models.conversation import MessageRole, MessageStatus

DocumentsField = Literal["all"] | list[uuid.UUID] | None
DOCUMENTS_DESCRIPTION = (
    'Documents the replies draw on: `"all"` of the owner\'s documents, a list of document ids, '
    "or `null` for none."
)


class ConversationCreate(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    system_prompt: str | None = Field(default=None, max_length=20_000)
    model: str | None = Field(
        default=None, max_length=200, description="A chat model name; default: the server's."
    )
    documents: DocumentsField = Field(default=None, description=DOCUMENTS_DESCRIPTION)


class ConversationUpdate(BaseModel):
    """Only the fields sent change; `null` clears a field."""

    title: str | None = Field(default=None, min_length=1, max_length=200)
    system_prompt: str | None = Field(default=None, max_length=20_000)
    model: str | None = Field(default=None, max_length=200)
    documents: DocumentsField = Field(default=None, description=DOCUMENTS_DESCRIPTION)


class ConversationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    title: str | None
    system_prompt: str | None
    model: str | None
    documents: Literal["all"] | list[uuid.UUID] | None
    created_at: datetime
    updated_at: datetime
    last_activity_at: datetime


class Citation(BaseModel):
    """A source that was put into the prompt of a reply, numbered `[n]` in its order."""

    document_id: uuid.UUID
    filename: str
    chunk_index: int
    page: int | None
    start: int
    end: int
    score: float
    quote: str


class MessageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    conversation_id: uuid.UUID
    role: MessageRole
    content: str
    created_at: datetime
    model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: int | None
    status: MessageStatus
    error: str | None
    citations: list[Citation]


class TurnCreate(BaseModel):
    content: str = Field(min_length=1, max_length=100_000)
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1, le=32_768)
    temperature: float | None = Field(default=None, ge=0, le=2)
    seed: int | None = Field(default=None, description="Same seed, same settings: same reply.")
    documents: DocumentsField = Field(
        default=None,
        description='Documents for this turn only (`"all"` or ids); default: the conversation\'s.',
    )


class TurnRead(BaseModel):
    generation_id: uuid.UUID
    user_message: MessageRead
    assistant_message: MessageRead
