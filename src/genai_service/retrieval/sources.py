"""What a chat turn asks of retrieval: the passages of a user's documents that fit a question.

A chat turn depends only on this contract; the vector store and the ingestion pipeline behind it
are the retrieval service's business.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeAlias

from genai_service.gateway.caller import Caller
from genai_service.kit.errors import ServiceUnavailable

DocumentScope: TypeAlias = Literal["all"] | Sequence[uuid.UUID]
"""Which documents a turn may draw on: all of the owner's indexed documents, or the listed ones."""


@dataclass(frozen=True, slots=True)
class Source:
    """One retrieved chunk: a span of a document's extracted text, with its similarity score."""

    document_id: uuid.UUID
    filename: str
    chunk_index: int
    page: int | None
    """1-based page of the chunk's start, for paged formats (PDF); otherwise `None`."""
    start: int
    end: int
    """Character offsets into the document's extracted text: `text == extracted[start:end]`."""
    score: float
    text: str


class SourceRetriever(Protocol):
    async def retrieve(self, caller: Caller, query: str, scope: DocumentScope) -> list[Source]:
        """The caller's chunks in `scope` most similar to `query`, best first.

        At most the configured top-k, none below the configured score threshold; documents of
        other owners are never returned.
        """
        ...


class DocumentsUnavailable(ServiceUnavailable):
    """Raised when documents are asked for but the server has no retriever (no embedding model)."""

    title = "Document search unavailable"
    slug = "documents-unavailable"
