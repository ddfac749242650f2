"""The documents domain's errors: shown to clients as problems, or kept as a document's `error`."""

from __future__ import annotations

from genai_service.kit.errors import AppError, NotFound, TooManyRequests


class DocumentNotFound(NotFound):
    title = "Document not found"
    slug = "document-not-found"


class UnreadableDocument(AppError):
    """The file could not be turned into text; shown as the document's `error`."""

    status_code = 422
    title = "Unreadable document"
    slug = "unreadable-document"


class DocumentTooLarge(UnreadableDocument):
    """The file holds more text than ingestion takes (a limit of `DocumentSettings`), or reading
    it needs more memory or time than allowed; found while reading, so it fails fast."""

    title = "Document too large"
    slug = "document-too-large"


class IngestionQueueFull(TooManyRequests):
    """The owner's documents still waiting for ingestion already take their share of the queue."""

    title = "Ingestion queue full"
    slug = "ingestion-queue-full"
