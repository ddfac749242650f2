"""One ingestion job: a claimed document run through the pipeline by the runner holding it.

The text is extracted in a child process (`parser_process`), then streamed: tokenized one
window at a time, cut into chunks as the tokens arrive, embedded and written a batch at a time.
Nothing holds a whole document's tokens, chunks or vectors at once. The stream runs twice: first
only to count what embedding the chunks costs, so that the whole document is reserved from its
owner's token budget before any chunk is embedded (one that does not fit fails at once, nothing
indexed); then to embed them under that reservation.

While it works, a watcher checks twice a second that the job is still this runner's; when it
was cancelled, deleted or taken over, the work is cancelled at once, whatever step it is in,
and what it wrote is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime, timedelta

from loguru import logger
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from genai_service.documents.errors import UnreadableDocument
from genai_service.documents.parser_process import ParserLimits, extract_text
from genai_service.documents.pipes.chunk import Chunk, Chunker
from genai_service.documents.pipes.embed import Embedder, embed_batch
from genai_service.documents.pipes.parse import TextLimits
from genai_service.documents.pipes.tokens import token_span_windows
from genai_service.documents.pipes.upsert import upsert_chunks
from genai_service.documents.repository import documents_in_transaction
from genai_service.documents.sniffing import DocumentType
from genai_service.documents.storage import DocumentStorage
from genai_service.gateway.caller import Caller
from genai_service.gateway.gateway import ModelGateway
from genai_service.gateway.guarded_embeddings import input_tokens
from genai_service.inference.base import EmbeddingModel, ModelNotReady, ModelProcessStopped
from genai_service.inference.registry import ModelRegistry
from genai_service.kit.db import utcnow
from genai_service.kit.errors import AppError
from genai_service.kit.tasks import uninterrupted
from genai_service.models.document import Document, DocumentStatus
from genai_service.retrieval.vector_store import VectorStore
from genai_service.settings import DocumentSettings

PARSED_PROGRESS = 0.1
"""Progress once the text is extracted; embedding fills the rest."""
HOLD_CHECK_SECONDS = 0.5
"""How often a running job checks that it is still its runner's: the delay of a cancel."""


class JobLost(Exception):
    """The job stopped being this runner's: cancelled, deleted, or its lease was taken over."""


@dataclass(slots=True)
class _Progress:
    status: DocumentStatus
    value: float
    page_count: int | None = None


@dataclass(frozen=True, slots=True)
class JobServices:
    """What every job of a runner works with."""

    runner_id: str
    sessionmaker: async_sessionmaker[AsyncSession]
    models: ModelRegistry
    """For the tokenizer; embedding is a model call, made through the gateway."""
    gateway: ModelGateway
    store: VectorStore
    storage: DocumentStorage
    settings: DocumentSettings


class IngestionJob:
    def __init__(self, document: Document, services: JobServices) -> None:
        self.document = document
        self._services = services
        self._settings = services.settings
        self._progress = _Progress(DocumentStatus.PARSING, 0.0)
        self._lost = False

    async def run(self) -> None:
        """Ingest the document and store how it ended. Cancelling it (the runner stopping)
        gives the job back to the queue."""
        document = self.document
        work = asyncio.create_task(self._ingest(), name=f"ingest-{document.id}")
        watcher = asyncio.create_task(self._watch(work), name=f"watch-{document.id}")
        try:
            chunk_count = await self._outcome(work)
            await self._finish(DocumentStatus.INDEXED, chunk_count=chunk_count)
        except JobLost:
            logger.info("document {}: job ended elsewhere (cancelled or deleted)", document.id)
            await self._remove_output()
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):  # best effort: the lease runs out otherwise
                async with documents_in_transaction(self._services.sessionmaker) as documents:
                    await documents.release(document.id, self._services.runner_id)
            raise
        except (ModelProcessStopped, ModelNotReady):
            await self._retry_or_fail()
        except AppError as error:
            await self._fail(error.detail)
        except Exception as error:
            logger.exception("document {}: ingestion failed", document.id)
            await self._fail(f"Ingestion failed unexpectedly ({type(error).__name__}).")
        finally:
            for task in (watcher, work):
                task.cancel()
            await asyncio.gather(watcher, work, return_exceptions=True)

    async def _outcome(self, work: asyncio.Task[int]) -> int:
        try:
            return await work
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self._lost and (current is None or not current.cancelling()):
                raise JobLost from None  # the watcher stopped the work, not the runner
            raise

    # The pipeline

    async def _ingest(self) -> int:
        document, services = self.document, self._services
        model = services.models.embedding()
        extracted = await extract_text(
            services.storage.original(document.id),
            services.storage.extracted_text(document.id),
            DocumentType(document.content_type),
            ParserLimits(
                text=TextLimits(
                    max_chars=self._settings.max_text_chars,
                    max_page_chars=self._settings.max_page_chars,
                ),
                memory_bytes=self._settings.parser_memory_bytes,
                timeout_s=self._settings.parser_timeout_seconds,
            ),
        )
        text = await services.storage.read_text(document.id) or ""
        self._progress = _Progress(
            DocumentStatus.EMBEDDING, PARSED_PROGRESS, page_count=extracted.page_count
        )
        await self._report()
        needed = 0
        counting = self._chunker(text, extracted.page_starts)
        async with aclosing(self._batches(model, text, counting)) as batches:
            async for batch in batches:
                needed += await input_tokens(model, [chunk.text for chunk in batch])
        if counting.count == 0:
            raise UnreadableDocument("No text was found in the document.")
        embedder = services.gateway.embedding(Caller(document.owner_id), "ingestion")
        chunker = self._chunker(text, extracted.page_starts)
        async with (
            embedder.reserved(needed) as embeddings,
            aclosing(self._batches(model, text, chunker)) as batches,
        ):
            async for batch in batches:
                await self._embed_and_write(embeddings, batch, len(text))
        await services.store.mark_searchable(document.owner_id, document.id)
        return chunker.count

    def _chunker(self, text: str, page_starts: Sequence[int] | None) -> Chunker:
        return Chunker(
            text,
            max_tokens=self._settings.chunk_tokens,
            max_chars=self._settings.chunk_chars,
            overlap=self._settings.chunk_overlap,
            page_starts=page_starts,
        )

    async def _batches(
        self, model: EmbeddingModel, text: str, chunker: Chunker
    ) -> AsyncGenerator[list[Chunk], None]:
        """The document's chunks, `embed_batch_size` at a time; the same batches every time."""
        batch: list[Chunk] = []
        async for _, spans in token_span_windows(model, text):
            for chunk in chunker.add(spans):
                batch.append(chunk)
                if len(batch) == self._settings.embed_batch_size:
                    yield batch
                    batch = []
        batch.extend(chunker.finish())
        if batch:
            yield batch

    async def _embed_and_write(
        self, embeddings: Embedder, batch: list[Chunk], text_length: int
    ) -> None:
        document, services = self.document, self._services
        vectors = await embed_batch(embeddings, batch)
        await upsert_chunks(
            services.store,
            owner_id=document.owner_id,
            document_id=document.id,
            filename=document.filename,
            chunks=batch,
            vectors=vectors,
        )
        self._progress.value = PARSED_PROGRESS + (1 - PARSED_PROGRESS) * batch[-1].end / text_length
        await self._report()

    # Holding the job

    async def _report(self) -> None:
        if self._lost or not await self._heartbeat():
            self._lost = True
            raise JobLost

    async def _heartbeat(self) -> bool:
        return await uninterrupted(self._write_heartbeat())  # the job is stopped by cancelling

    async def _write_heartbeat(self) -> bool:
        progress = self._progress
        async with documents_in_transaction(self._services.sessionmaker) as documents:
            return await documents.heartbeat(
                self.document.id,
                self._services.runner_id,
                status=progress.status,
                progress=round(progress.value, 4),
                lease_until=self._lease_until(),
                page_count=progress.page_count,
            )

    async def _holds(self) -> bool:
        async with documents_in_transaction(self._services.sessionmaker) as documents:
            return await documents.holds(self.document.id, self._services.runner_id)

    async def _watch(self, work: asyncio.Task[int]) -> None:
        """Stop `work` as soon as the job is no longer this runner's; renew the lease during
        long steps that report no progress (extracting a large PDF)."""
        renew_every = timedelta(seconds=self._settings.lease_seconds / 3)
        renewed = utcnow()
        while not self._lost:
            await asyncio.sleep(HOLD_CHECK_SECONDS)
            try:
                if utcnow() - renewed >= renew_every:
                    held = await self._heartbeat()
                    renewed = utcnow()
                else:
                    held = await uninterrupted(self._holds())
            except Exception:  # the next check may work; the lease has slack for it
                logger.exception("document {}: checking the job failed", self.document.id)
                continue
            if not held:
                self._lost = True
                work.cancel()

    def _lease_until(self) -> datetime:
        return utcnow() + timedelta(seconds=self._settings.lease_seconds)

    # Endings

    async def _finish(
        self, status: DocumentStatus, *, error: str | None = None, chunk_count: int | None = None
    ) -> None:
        async with documents_in_transaction(self._services.sessionmaker) as documents:
            finished = await documents.finish(
                self.document.id,
                self._services.runner_id,
                status=status,
                now=utcnow(),
                error=error,
                chunk_count=chunk_count,
            )
        if not finished:
            raise JobLost
        logger.info("document {} {}", self.document.id, status.value)

    async def _fail(self, error: str) -> None:
        document = self.document
        await self._services.store.delete_document(document.owner_id, document.id)
        try:
            await self._finish(DocumentStatus.FAILED, error=error)
        except JobLost:
            await self._remove_output()
            return
        logger.warning("document {} failed: {}", document.id, error)

    async def _retry_or_fail(self) -> None:
        """The embedding model's process died while it worked on this document (or was not
        running, after dying on another one): perhaps because of this document, so it counts as
        an attempt. Another attempt follows once the model is back, until the document has had
        `max_attempts`."""
        attempts, limit = self.document.attempts, self._settings.max_attempts
        if attempts >= limit:
            await self._fail(
                f"The embedding model's process stopped while ingesting this document, on each "
                f"of its {attempts} attempts; it is not tried again (retry to try once more)."
            )
            return
        document = self.document
        await self._services.store.delete_document(document.owner_id, document.id)
        error = (
            f"The embedding model's process stopped during attempt {attempts} of {limit}; "
            "the document will be tried again."
        )
        async with documents_in_transaction(self._services.sessionmaker) as documents:
            released = await documents.release(document.id, self._services.runner_id, error=error)
        if not released:
            await self._remove_output()
        logger.warning("document {}: {}", document.id, error)

    async def _remove_output(self) -> None:
        """Remove what the job wrote; its files too when the document was deleted meanwhile."""
        document = self.document
        await self._services.store.delete_document(document.owner_id, document.id)
        async with documents_in_transaction(self._services.sessionmaker) as documents:
            deleted = await documents.get(document.id) is None
        if deleted:
            await self._services.storage.remove(document.id)
