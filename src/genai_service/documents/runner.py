"""The ingestion runner: claims document jobs from the database and runs the pipeline on them.

The document row is the job. A runner claims it with a lease, renews the lease while it works
and reports progress; if the runner dies (process killed), the lease runs out and any runner
claims the job again. Points have deterministic ids, so a job run twice writes each chunk once.
The same runner works inside the server (started by the lifespan, woken after an upload) or on
its own (`genai-service worker`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio.to_thread
from loguru import logger
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from genai_service.documents.pipes.chunk import chunk_text
from genai_service.documents.pipes.embed import batches, embed_batch, token_spans
from genai_service.documents.pipes.parse import UnreadableDocument, parse
from genai_service.documents.pipes.upsert import upsert_chunks
from genai_service.documents.repository import DocumentRepository
from genai_service.documents.sniffing import DocumentType
from genai_service.documents.storage import DocumentStorage
from genai_service.inference.registry import ModelRegistry
from genai_service.kit.db import utcnow
from genai_service.kit.errors import AppError
from genai_service.models.document import Document, DocumentStatus
from genai_service.retrieval.vector_store import VectorStore
from genai_service.settings import DocumentSettings

PARSED_PROGRESS = 0.1
"""Progress once the text is extracted; embedding fills the rest."""


class JobLost(Exception):
    """The job stopped being this runner's: cancelled, deleted, or its lease was taken over."""


@dataclass(slots=True)
class _Progress:
    status: DocumentStatus
    value: float
    page_count: int | None = None


def new_runner_id() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class IngestionRunner:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        models: ModelRegistry,
        store: VectorStore,
        storage: DocumentStorage,
        settings: DocumentSettings,
        runner_id: str | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._models = models
        self._store = store
        self._storage = storage
        self._settings = settings
        self.runner_id = runner_id or new_runner_id()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # Lifecycle

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run_forever(), name="ingestion-runner")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def wake(self) -> None:
        """Look for work now (after an upload or a retry) instead of at the next poll."""
        self._wake.set()

    async def run_forever(self) -> None:
        while True:
            try:
                worked = await self.run_one()
            except asyncio.CancelledError:
                raise
            except Exception:  # a database hiccup must not end the runner
                logger.exception("ingestion runner: claiming a job failed")
                worked = False
            if not worked:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._settings.poll_seconds)
                self._wake.clear()

    async def run_until_idle(self) -> int:
        """Run jobs until none is claimable; how many were run."""
        count = 0
        while await self.run_one():
            count += 1
        return count

    async def run_one(self) -> bool:
        """Claim and run one job; `False` when there was none (or the model is not ready)."""
        model = self._models.embedding()
        if not model.ready:
            return False
        job = await self._claim()
        if job is None:
            return False
        await self._run(job)
        return True

    # Claiming

    async def _claim(self) -> Document | None:
        now = utcnow()
        async with self._transaction() as documents:
            for stuck in await documents.exhausted(
                now=now, max_attempts=self._settings.max_attempts
            ):
                error = (
                    f"Ingestion was interrupted {stuck.attempts} times without finishing; "
                    "retry to try again."
                )
                if await documents.fail_exhausted(stuck.id, now=now, error=error):
                    logger.warning("document {} failed: {}", stuck.id, error)
            job = await documents.claim_next(
                self.runner_id, now=now, lease_until=self._lease_until()
            )
        if job is not None:
            logger.info("document {} claimed (attempt {})", job.id, job.attempts)
        return job

    def _lease_until(self) -> datetime:
        return utcnow() + timedelta(seconds=self._settings.lease_seconds)

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[DocumentRepository]:
        async with self._sessionmaker() as session, session.begin():
            yield DocumentRepository(session)

    # Running one job

    async def _run(self, job: Document) -> None:
        progress = _Progress(DocumentStatus.PARSING, 0.0)
        lost = asyncio.Event()
        keeper = asyncio.create_task(self._keep_lease(job, progress, lost), name="lease-keeper")
        try:
            chunk_count = await self._ingest(job, progress, lost)
            await self._finish(job, DocumentStatus.INDEXED, chunk_count=chunk_count)
        except JobLost:
            logger.info("document {}: job ended elsewhere (cancelled or deleted)", job.id)
            await self._store.delete_document(job.owner_id, job.id)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):  # best effort: the lease runs out otherwise
                async with self._transaction() as documents:
                    await documents.release(job.id, self.runner_id)
            raise
        except AppError as error:
            await self._fail(job, error.detail)
        except Exception as error:
            logger.exception("document {}: ingestion failed", job.id)
            await self._fail(job, f"Ingestion failed unexpectedly ({type(error).__name__}).")
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    async def _ingest(self, job: Document, progress: _Progress, lost: asyncio.Event) -> int:
        model = self._models.embedding()
        content = await self._storage.read_original(job.id)
        parsed = await anyio.to_thread.run_sync(parse, content, DocumentType(job.content_type))
        await self._storage.write_text(job.id, parsed.text)
        spans = await token_spans(model, parsed.text)
        chunks = await anyio.to_thread.run_sync(
            lambda: chunk_text(
                parsed.text,
                spans,
                max_tokens=self._settings.chunk_tokens,
                overlap=self._settings.chunk_overlap,
                page_starts=parsed.page_starts,
            )
        )
        if not chunks:
            raise UnreadableDocument("No text was found in the document.")
        progress.status, progress.value = DocumentStatus.EMBEDDING, PARSED_PROGRESS
        progress.page_count = parsed.page_count
        await self._report(job, progress, lost)
        done = 0
        for batch in batches(chunks, self._settings.embed_batch_size):
            vectors = await embed_batch(model, batch)
            await upsert_chunks(
                self._store,
                owner_id=job.owner_id,
                document_id=job.id,
                filename=job.filename,
                chunks=batch,
                vectors=vectors,
            )
            done += len(batch)
            progress.value = PARSED_PROGRESS + (1 - PARSED_PROGRESS) * done / len(chunks)
            await self._report(job, progress, lost)
        await self._store.mark_searchable(job.owner_id, job.id)
        return len(chunks)

    async def _report(self, job: Document, progress: _Progress, lost: asyncio.Event) -> None:
        if lost.is_set() or not await self._heartbeat(job, progress):
            lost.set()
            raise JobLost

    async def _heartbeat(self, job: Document, progress: _Progress) -> bool:
        async with self._transaction() as documents:
            return await documents.heartbeat(
                job.id,
                self.runner_id,
                status=progress.status,
                progress=round(progress.value, 4),
                lease_until=self._lease_until(),
                page_count=progress.page_count,
            )

    async def _keep_lease(self, job: Document, progress: _Progress, lost: asyncio.Event) -> None:
        """Renew the lease during long steps (parsing a large PDF) that report no progress."""
        while not lost.is_set():
            await asyncio.sleep(self._settings.lease_seconds / 3)
            try:
                if not await self._heartbeat(job, progress):
                    lost.set()
            except Exception:  # the next renewal may work; the lease has slack for it
                logger.exception("document {}: renewing the lease failed", job.id)

    async def _finish(
        self,
        job: Document,
        status: DocumentStatus,
        *,
        error: str | None = None,
        chunk_count: int | None = None,
    ) -> bool:
        async with self._transaction() as documents:
            finished = await documents.finish(
                job.id,
                self.runner_id,
                status=status,
                now=utcnow(),
                error=error,
                chunk_count=chunk_count,
            )
        if not finished:
            raise JobLost
        logger.info("document {} {}", job.id, status.value)
        return finished

    async def _fail(self, job: Document, error: str) -> None:
        await self._store.delete_document(job.owner_id, job.id)
        with contextlib.suppress(JobLost):
            await self._finish(job, DocumentStatus.FAILED, error=error)
        logger.warning("document {} failed: {}", job.id, error)
