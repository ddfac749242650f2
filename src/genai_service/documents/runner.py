"""The ingestion runner: claims document jobs from the database and runs them (`job.py`).

The document row is the job. A runner claims it with a lease, renews the lease while it works
and reports progress; if the runner dies (process killed), the lease runs out and any runner
claims the job again. Points have deterministic ids, so a job run twice writes each chunk once.

A runner works on up to `concurrent_jobs` jobs at once, never two of the same owner: while one
user's large document is ingested, the other slots serve everyone else. The same runner works
inside the server (started by the lifespan, woken after an upload) or on its own
(`genai-service worker`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from datetime import datetime, timedelta

from loguru import logger
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from genai_service.documents.job import IngestionJob, JobServices
from genai_service.documents.repository import documents_in_transaction
from genai_service.documents.storage import DocumentStorage
from genai_service.gateway.gateway import ModelGateway
from genai_service.inference.registry import ModelRegistry
from genai_service.kit.db import utcnow
from genai_service.models.document import Document
from genai_service.retrieval.vector_store import VectorStore
from genai_service.settings import DocumentSettings


def new_runner_id() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class IngestionRunner:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        models: ModelRegistry,
        gateway: ModelGateway,
        store: VectorStore,
        storage: DocumentStorage,
        settings: DocumentSettings,
        runner_id: str | None = None,
    ) -> None:
        self._settings = settings
        self.runner_id = runner_id or new_runner_id()
        self._services = JobServices(
            runner_id=self.runner_id,
            sessionmaker=sessionmaker,
            models=models,
            gateway=gateway,
            store=store,
            storage=storage,
            settings=settings,
        )
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._jobs: set[asyncio.Task[None]] = set()

    # Lifecycle

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self.run_forever(), name="ingestion-runner")

    async def stop(self) -> None:
        """Stop claiming; jobs in progress go back to the queue.

        Cancelled once, not again until it ends: a repeated cancellation would cut short the
        jobs' own giving back. The flag ends the loop should the cancellation be lost in a
        database call (see `kit.tasks`)."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            self._wake.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def running_jobs(self) -> int:
        return len(self._jobs)

    def wake(self) -> None:
        """Look for work now (after an upload or a retry) instead of at the next poll."""
        self._wake.set()

    async def run_forever(self) -> None:
        try:
            while not self._stopping:
                self._wake.clear()
                try:
                    await self._fill_slots()
                except Exception:  # a database hiccup must not end the runner
                    logger.exception("ingestion runner: claiming a job failed")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._settings.poll_seconds):
                        await self._wake.wait()
        finally:
            await self._stop_jobs()

    async def run_until_idle(self) -> int:
        """Run jobs until none is running and none is claimable; how many were run."""
        count = 0
        try:
            while True:
                self._wake.clear()
                count += await self._fill_slots()
                if not self._jobs:
                    return count
                await self._wake.wait()  # a job ended
        finally:
            await self._stop_jobs()

    # Claiming

    async def _fill_slots(self) -> int:
        """Claim jobs while slots are free (and the embedding model is ready); how many."""
        claimed = 0
        while len(self._jobs) < self._settings.concurrent_jobs:
            if not self._services.models.embedding().ready:
                break
            document = await self._claim()
            if document is None:
                break
            task = asyncio.create_task(
                IngestionJob(document, self._services).run(), name=f"job-{document.id}"
            )
            self._jobs.add(task)
            task.add_done_callback(self._job_ended)
            claimed += 1
        return claimed

    async def _claim(self) -> Document | None:
        now = utcnow()
        async with documents_in_transaction(self._services.sessionmaker) as documents:
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

    def _job_ended(self, task: asyncio.Task[None]) -> None:
        self._jobs.discard(task)
        self._wake.set()
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.opt(exception=error).error("ingestion job {} crashed", task.get_name())

    async def _stop_jobs(self) -> None:
        jobs = list(self._jobs)
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
