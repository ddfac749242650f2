"""The ingestion runner outside the server: `genai-service worker` and `genai-service ingest`."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
from loguru import logger
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from genai_service.composition import open_runtime
from genai_service.documents.repository import DocumentRepository
from genai_service.documents.runner import IngestionRunner
from genai_service.documents.service import DocumentService
from genai_service.documents.storage import DocumentStorage
from genai_service.inference.registry import ModelRegistry
from genai_service.kit.errors import AppError
from genai_service.models.document import Document
from genai_service.retrieval.vector_store import QdrantVectorStore
from genai_service.settings import Settings

WATCH_INTERVAL_S = 0.3
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class IngestionContext:
    """The parts of a `worker` runtime that ingestion uses, none of them optional."""

    sessionmaker: async_sessionmaker[AsyncSession]
    runner: IngestionRunner
    storage: DocumentStorage
    store: QdrantVectorStore


@contextlib.asynccontextmanager
async def ingestion_context(
    settings: Settings, models: ModelRegistry | None = None
) -> AsyncIterator[IngestionContext]:
    """The runtime in `worker` mode (the database, the embedding model, the vector store and a
    runner), opened together and closed together."""
    async with open_runtime(settings, mode="worker", models=models) as runtime:
        if runtime.ingestion is None or runtime.vector_store is None:
            raise AppError("ingestion needs an embedding model; none is configured")
        yield IngestionContext(
            runtime.sessionmaker, runtime.ingestion, runtime.storage, runtime.vector_store
        )


async def run_worker(settings: Settings, *, drain: bool) -> int:
    """Run jobs until stopped (SIGTERM or SIGINT), or (`drain`) until none is left; how many
    were run (`drain`)."""
    return await _until_terminated(_work(settings, drain=drain)) or 0


async def _work(settings: Settings, *, drain: bool) -> int:
    async with ingestion_context(settings) as context:
        logger.info("ingestion worker {} started", context.runner.runner_id)
        if drain:
            return await context.runner.run_until_idle()
        await context.runner.run_forever()
    return 0


async def _until_terminated(work: Coroutine[Any, Any, T]) -> T | None:
    """`work`'s result, or `None` once SIGTERM (how service managers and container runtimes stop
    a process) cancelled it. Cancelled, `work` closes its contexts as on any other exit: jobs go
    back to the queue and the embedding model's process is shut down, so nothing is left for
    multiprocessing's resource tracker to complain about on stderr (the default action of
    SIGTERM would end the process at once)."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if not task.cancelled() or (current is not None and current.cancelling()):
            raise
        logger.info("ingestion worker stopped (SIGTERM)")
        return None
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def files_under(paths: Iterable[Path]) -> list[Path]:
    """The files named, and every non-hidden file inside the folders named."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file()
                    and not any(part.startswith(".") for part in p.relative_to(path).parts)
                )
            )
        else:
            found.append(path)
    return found


@dataclass(slots=True)
class IngestOutcome:
    path: Path
    document: Document | None = None
    created: bool = False
    rejected: str | None = None


async def add_files(
    context: IngestionContext, settings: Settings, owner_id: uuid.UUID, files: Sequence[Path]
) -> list[IngestOutcome]:
    """Each file added as the owner's document (or found as an existing one), one commit each."""
    outcomes: list[IngestOutcome] = []
    for path in files:
        outcome = IngestOutcome(path)
        try:
            async with context.sessionmaker() as session:
                service = DocumentService(
                    session,
                    storage=context.storage,
                    store=context.store,
                    max_upload_bytes=settings.documents.max_upload_bytes,
                    max_queued_bytes=None,  # ingested right here, not left to a shared queue
                )
                async with await anyio.open_file(path, "rb") as file:
                    document, created = await service.upload(owner_id, path.name, file.read)
                await session.commit()
            outcome.document, outcome.created = document, created
        except AppError as error:
            outcome.rejected = error.detail
        except OSError as error:
            outcome.rejected = error.strerror or str(error)
        outcomes.append(outcome)
    return outcomes


async def follow_until_final(
    context: IngestionContext,
    document_ids: Sequence[uuid.UUID],
    on_update: Callable[[Document], None],
) -> list[Document]:
    """Run the runner until every listed document reaches a final state, reporting each
    document's state as it changes."""
    runner = asyncio.create_task(context.runner.run_forever(), name="ingestion-runner")
    try:
        while True:
            async with context.sessionmaker() as session:
                repository = DocumentRepository(session)
                current = [await repository.get(document_id) for document_id in document_ids]
            documents = [document for document in current if document is not None]
            for document in documents:
                on_update(document)
            if all(document.status.is_final for document in documents):
                return documents
            if runner.done():
                runner.result()  # raises what stopped it
            await asyncio.sleep(WATCH_INTERVAL_S)
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
