from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from genai_service.models.conversation import GenerationStatus


class GenerationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    conversation_id: uuid.UUID
    status: GenerationStatus
    model: str
    user_message_id: uuid.UUID
    assistant_message_id: uuid.UUID | None
    """Set once the reply is stored."""
    created_at: datetime
    deadline_at: datetime
    finished_at: datetime | None
