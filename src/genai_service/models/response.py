"""Responses of `/v1/responses` kept for `GET` and for `previous_response_id` continuations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from genai_service.kit.db import Base, utcnow


class StoredResponse(Base):
    """One response, as its caller gets it back, and the conversation a continuation starts from.

    `context` is the whole conversation up to and including this response's output, as input
    items: continuing from a response reads one row, and deleting a response never breaks a
    later one that was built on it.
    """

    __tablename__ = "responses"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The response object, as `GET /v1/responses/{id}` returns it."""
    context: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    """Input items: the earlier conversation, this request's input, then this response's output
    (instructions are not part of it: OpenAI does not carry them over either)."""
