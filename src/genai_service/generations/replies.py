"""Where a generation's reply goes when it ends: the `ReplySink` the runner writes through.

The runner knows generations, not conversations. The conversations domain implements the sink
(`conversations.replies`), and the runtime hands it to the runner, so neither package imports
the other in both directions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from genai_service.generations.plan import GenerationPlan
from genai_service.inference.base import Usage
from genai_service.models.conversation import Generation, GenerationStatus


@dataclass(frozen=True, slots=True)
class GenerationOutcome:
    status: GenerationStatus
    text: str
    usage: Usage | None = None
    error: str | None = None
    latency_ms: int | None = None


@dataclass(frozen=True, slots=True)
class StoredReply:
    id: uuid.UUID
    data: dict[str, Any]
    """The reply as events and API responses show it."""


class ReplySink(Protocol):
    async def store(
        self, session: AsyncSession, plan: GenerationPlan, outcome: GenerationOutcome
    ) -> StoredReply:
        """Write the reply of a generation the caller has just ended, in `session`."""
        ...

    async def store_interrupted(
        self, session: AsyncSession, generation: Generation, status: GenerationStatus
    ) -> StoredReply:
        """Write the empty reply of a generation given up because its writer stopped."""
        ...

    async def read(self, session: AsyncSession, reply_id: uuid.UUID) -> StoredReply | None: ...

    async def completed(self, plan: GenerationPlan, text: str) -> None:
        """After a completed reply is stored: what follows it (a title for a new conversation).
        Never raises."""
        ...
