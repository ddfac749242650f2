from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from genai_service.models.document import DocumentStatus


class DocumentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    filename: str = Field(description="The uploaded file's name: a label, never a path.")
    content_type: str = Field(description="Detected from the content, not from the name.")
    size: int = Field(description="Bytes.")
    sha256: str
    status: DocumentStatus
    progress: float = Field(ge=0, le=1, description="Ingestion progress, 0 to 1.")
    error: str | None = Field(description="Why ingestion failed, when it did.")
    attempts: int
    chunk_count: int | None
    page_count: int | None
    created_at: datetime
    updated_at: datetime
    indexed_at: datetime | None


class DocumentProgress(BaseModel):
    """One event of `GET /api/documents/{id}/events`."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    status: DocumentStatus
    progress: float
    error: str | None
    chunk_count: int | None
