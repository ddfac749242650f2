"""What a generation is to do, decided (and committed with its turn) before it starts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from genai_service.gateway.caller import Caller
from genai_service.gateway.guarded_models import AdmittedChat


@dataclass(frozen=True, slots=True)
class GenerationPlan:
    generation_id: uuid.UUID
    conversation_id: uuid.UUID
    caller: Caller
    """Who asked: the model call and its title are theirs (budgets, usage)."""
    model_name: str
    call: AdmittedChat
    """The reply's model call, admitted with the turn; the runner runs it (or releases it)."""
    prompt_tokens: int
    deadline_at: datetime
    citations: list[dict[str, Any]] = field(default_factory=list)
    title_question: str | None = None
    """Set for untitled conversations: the question the title is written from."""
