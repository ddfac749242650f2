"""Documents: upload (with type sniffing and dedup), the user's view of ingestion, removal."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import PurePosixPath, PureWindowsPath
from typing import NoReturn

from loguru import logger
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from genai_service.documents.errors import DocumentNotFound, IngestionQueueFull
from genai_service.documents.repository import DocumentRepository
from genai_service.documents.sniffing import sniff
from genai_service.documents.storage import DocumentStorage, Reader, StoredUpload
from genai_service.kit.errors import BadRequest, Conflict, PayloadTooLarge, UnsupportedMediaType
from genai_service.kit.pagination import PageParams
from genai_service.models.document import Document, DocumentStatus
from genai_service.retrieval.vector_store import VectorStore

MAX_FILENAME_LENGTH = 255
ACCEPTED_TYPES = "plain text, Markdown, HTML or PDF"
QUEUE_RETRY_AFTER_S = 60


def display_filename(name: str | None) -> str:
    """The client's filename reduced to its last part, for display only (never a path)."""
    raw = (name or "").replace("\x00", "")
    base = PureWindowsPath(PurePosixPath(raw).name).name.strip()
    return base[:MAX_FILENAME_LENGTH] or "document"


class DocumentService:
    def __init__(
        self,
        session: AsyncSession,
        *,
        storage: DocumentStorage,
        store: VectorStore,
        max_upload_bytes: int,
        max_queued_bytes: int | None,
    ) -> None:
        """`max_queued_bytes`: the most bytes of one owner's documents not yet ingested
        (`None`: no limit, for the command line, which ingests what it adds itself)."""
        self.session = session
        self.documents = DocumentRepository(session)
        self.storage = storage
        self.store = store
        self.max_upload_bytes = max_upload_bytes
        self.max_queued_bytes = max_queued_bytes

    async def upload(
        self, owner_id: uuid.UUID, filename: str | None, read: Reader
    ) -> tuple[Document, bool]:
        """Store a file and queue its ingestion. `(document, False)` when the owner already has
        a document with the same content: that one is returned and nothing is stored again.

        An owner whose queue is already full is refused before the file is stored."""
        await self._check_queue(owner_id, adding=None)
        upload = await self.storage.receive(read, max_bytes=self.max_upload_bytes)
        try:
            return await self._accept(owner_id, display_filename(filename), upload)
        finally:
            await self.storage.discard(upload.path)  # a no-op once the file was kept

    async def _accept(
        self, owner_id: uuid.UUID, filename: str, upload: StoredUpload
    ) -> tuple[Document, bool]:
        if upload.too_large:
            raise PayloadTooLarge(
                f"The document is larger than the {self.max_upload_bytes} bytes accepted."
            )
        if upload.size == 0:
            raise BadRequest("The file is empty.")
        document_type = sniff(upload.head, whole_file=upload.size == len(upload.head))
        if document_type is None:
            raise UnsupportedMediaType(
                f"The file is not {ACCEPTED_TYPES} (judged from its content, not its name)."
            )
        existing = await self.documents.get_by_sha256(owner_id, upload.sha256)
        if existing is not None:
            return existing, False
        document = Document(
            id=uuid.uuid4(),
            owner_id=owner_id,
            filename=filename,
            content_type=document_type.value,
            size=upload.size,
            sha256=upload.sha256,
            status=DocumentStatus.QUEUED,
            progress=0.0,
            attempts=0,
        )
        await self.documents.lock_owner(owner_id)
        try:
            async with self.session.begin_nested():
                if self.max_queued_bytes is None:
                    await self.documents.add(document)
                elif not await self.documents.add_within_queue_limit(
                    document, max_queued_bytes=self.max_queued_bytes
                ):
                    await self._refuse_over_queue_limit(owner_id, adding=upload.size)
        except IntegrityError:  # the same content, uploaded twice at the same moment
            existing = await self.documents.get_by_sha256(owner_id, upload.sha256)
            if existing is None:
                raise
            return existing, False
        await self.storage.keep(upload, document.id)
        document = await self.get(owner_id, document.id)
        logger.info("document {} uploaded ({}, {} bytes)", document.id, document_type, upload.size)
        return document, True

    async def list_for(
        self, owner_id: uuid.UUID, params: PageParams
    ) -> tuple[Sequence[Document], int]:
        return await self.documents.list_for_owner(
            owner_id, offset=params.offset, limit=params.limit
        )

    async def get(self, owner_id: uuid.UUID, document_id: uuid.UUID) -> Document:
        document = await self.documents.get_for_owner(document_id, owner_id)
        if document is None:
            raise DocumentNotFound("No such document.")
        return document

    async def extracted_text(self, owner_id: uuid.UUID, document_id: uuid.UUID) -> str:
        document = await self.get(owner_id, document_id)
        text = await self.storage.read_text(document.id)
        if text is None:
            raise Conflict(f"The document's text is not extracted yet (status {document.status}).")
        return text

    async def retry(self, owner_id: uuid.UUID, document_id: uuid.UUID) -> Document:
        document = await self.get(owner_id, document_id)
        await self.documents.lock_owner(owner_id)
        if document.status is DocumentStatus.FAILED:
            await self._check_queue(owner_id, adding=document.size)
        if not await self.documents.requeue(document.id, from_status=DocumentStatus.FAILED):
            raise Conflict(f"Only a failed document can be retried; this one is {document.status}.")
        return await self.get(owner_id, document_id)

    async def _check_queue(self, owner_id: uuid.UUID, *, adding: int | None) -> None:
        """Refuse when the owner's documents not yet ingested, with `adding` bytes more (`None`:
        a document of unknown size, at least a byte), would pass `max_queued_bytes`."""
        if self.max_queued_bytes is None:
            return
        if await self.documents.queued_bytes(owner_id) + (adding or 1) > self.max_queued_bytes:
            await self._refuse_over_queue_limit(owner_id, adding=adding)

    async def _refuse_over_queue_limit(
        self, owner_id: uuid.UUID, *, adding: int | None
    ) -> NoReturn:
        queued = await self.documents.queued_bytes(owner_id)
        detail = (
            f"Your documents waiting for ingestion take {queued:,} of the "
            f"{self.max_queued_bytes:,} bytes one user may have queued"
        )
        detail += "." if adding is None else f"; this one ({adding:,} bytes) does not fit."
        raise IngestionQueueFull(
            detail + " Try again once some are indexed, or cancel some.",
            retry_after=QUEUE_RETRY_AFTER_S,
        )

    async def cancel(self, owner_id: uuid.UUID, document_id: uuid.UUID) -> Document:
        document = await self.get(owner_id, document_id)
        if not await self.documents.cancel(document.id):
            raise Conflict(f"The document's ingestion already ended ({document.status}).")
        # A runner still working on it stops within a second and removes what it wrote.
        await self.store.delete_document(owner_id, document.id)
        logger.info("document {} ingestion cancelled", document.id)
        return await self.get(owner_id, document_id)

    async def delete(self, owner_id: uuid.UUID, document_id: uuid.UUID) -> None:
        document = await self.get(owner_id, document_id)
        await self.documents.delete(document)
        await self.store.delete_document(owner_id, document.id)
        await self.storage.remove(document.id)
        logger.info("document {} deleted", document.id)


async def watch_document(
    sessionmaker: async_sessionmaker[AsyncSession],
    document_id: uuid.UUID,
    *,
    interval_s: float,
) -> AsyncIterator[Document | None]:
    """The document each time its status or progress changes, until a final state; `None` once
    if it is deleted meanwhile. Reads the database, so it sees runners in other processes too."""
    last: tuple[DocumentStatus, float] | None = None
    while True:
        async with sessionmaker() as session:
            document = await DocumentRepository(session).get(document_id)
        if document is None:
            yield None
            return
        state = (document.status, document.progress)
        if state != last:
            last = state
            yield document
        if document.status.is_final:
            return
        await asyncio.sleep(interval_s)
