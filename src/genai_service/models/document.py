"""Documents: an uploaded file and, in the same row, the durable job that ingests it."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    Enum,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from genai_service.kit.db import Base, TimestampMixin


class DocumentStatus(StrEnum):
    QUEUED = "queued"
    PARSING = "parsing"
    EMBEDDING = "embedding"
    INDEXED = "indexed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {DocumentStatus.INDEXED, DocumentStatus.FAILED, DocumentStatus.CANCELLED}
)
RUNNING_STATUSES = frozenset({DocumentStatus.PARSING, DocumentStatus.EMBEDDING})


class Document(TimestampMixin, Base):
    """An uploaded file. Its status, progress and lease make it the ingestion job as well: a
    runner claims the row, renews `lease_expires_at` while it works, and a row whose lease ran
    out is claimed again by another runner."""

    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("owner_id", "sha256"),
        CheckConstraint(
            "status IN ('queued', 'parsing', 'embedding', 'indexed', 'failed', 'cancelled')",
            name="status",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    """The client's name for the file: metadata only, never a path on disk."""
    content_type: Mapped[str] = mapped_column(String(100))
    """Detected from the content, not from the name."""
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[DocumentStatus] = mapped_column(
        Enum(
            DocumentStatus,
            native_enum=False,
            create_constraint=False,
            length=16,
            values_callable=lambda statuses: [status.value for status in statuses],
        ),
        default=DocumentStatus.QUEUED,
        index=True,
    )
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    chunk_count: Mapped[int | None] = mapped_column(Integer)
    page_count: Mapped[int | None] = mapped_column(Integer)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    indexed_at: Mapped[datetime | None]
