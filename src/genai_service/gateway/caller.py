"""Who a model call is made for, and why: what budgets, limits and usage are counted against."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from genai_service.auth.principal import Principal

Purpose = Literal[
    "chat",
    "completion",
    "response",
    "embeddings",
    "turn",
    "title",
    "retrieval",
    "ingestion",
]
"""`chat`, `completion`, `response` and `embeddings`: the OpenAI surface (and `/chat`); `turn`
and `title`: conversations; `retrieval`: the question of a document turn or a search;
`ingestion`: a document's chunks."""


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: uuid.UUID
    api_key_id: uuid.UUID | None = None
    """The API key the call came with: its own limits apply too."""

    @classmethod
    def of(cls, principal: Principal) -> Caller:
        return cls(principal.user.id, principal.api_key_id)
