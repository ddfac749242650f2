"""All SQL about documents, including the claim, heartbeat and release of ingestion jobs."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from sqlalchemy import (
    Select,
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from genai_service.kit.db import utcnow
from genai_service.models.document import RUNNING_STATUSES, Document, DocumentStatus
from genai_service.models.user import User

CLAIM_RACE_RETRIES = 5
UNFINISHED_STATUSES = frozenset({DocumentStatus.QUEUED, *RUNNING_STATUSES})


def _claimable(now: datetime) -> ColumnElement[bool]:
    """Queued jobs, and running jobs whose runner stopped renewing its lease."""
    return or_(
        Document.status == DocumentStatus.QUEUED,
        and_(
            Document.status.in_(RUNNING_STATUSES),
            or_(Document.lease_expires_at.is_(None), Document.lease_expires_at < now),
        ),
    )


def _owner_is_busy(now: datetime) -> ColumnElement[bool]:
    """The job's owner has another job that a live runner is working on."""
    running = aliased(Document)
    return exists().where(
        running.owner_id == Document.owner_id,
        running.id != Document.id,
        running.status.in_(RUNNING_STATUSES),
        running.lease_expires_at >= now,
    )


def _queued_bytes(owner_id: uuid.UUID) -> Select[int]:
    return select(func.coalesce(func.sum(Document.size), 0)).where(
        Document.owner_id == owner_id, Document.status.in_(UNFINISHED_STATUSES)
    )


class DocumentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, document: Document) -> Document:
        self.session.add(document)
        await self.session.flush()
        return document

    async def get(self, document_id: uuid.UUID) -> Document | None:
        return await self.session.get(Document, document_id, populate_existing=True)

    async def get_for_owner(self, document_id: uuid.UUID, owner_id: uuid.UUID) -> Document | None:
        result = await self.session.execute(
            select(Document)
            .where(Document.id == document_id, Document.owner_id == owner_id)
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def get_by_sha256(self, owner_id: uuid.UUID, sha256: str) -> Document | None:
        result = await self.session.execute(
            select(Document).where(Document.owner_id == owner_id, Document.sha256 == sha256)
        )
        return result.scalar_one_or_none()

    async def add_within_queue_limit(self, document: Document, *, max_queued_bytes: int) -> bool:
        """Insert the new, queued `document` unless the owner's documents not yet ingested
        would then take more than `max_queued_bytes`; whether it was inserted.

        The check and the insert are one statement (with the owner's row locked first on
        PostgreSQL, `lock_owner`), so concurrent uploads cannot slip under the limit together.
        """
        now = utcnow()
        values: dict[str, object] = {
            "id": document.id,
            "owner_id": document.owner_id,
            "filename": document.filename,
            "content_type": document.content_type,
            "size": document.size,
            "sha256": document.sha256,
            "status": DocumentStatus.QUEUED,
            "progress": 0.0,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        columns = Document.__table__.c
        queued = _queued_bytes(document.owner_id).scalar_subquery()
        row = select(*(literal(value, columns[name].type) for name, value in values.items()))
        result = await self.session.execute(
            insert(Document).from_select(
                list(values), row.where(queued + document.size <= max_queued_bytes)
            )
        )
        return _changed_one(result)

    async def queued_bytes(self, owner_id: uuid.UUID) -> int:
        """Bytes of the owner's documents not yet ingested (queued or running)."""
        return int(await self.session.scalar(_queued_bytes(owner_id)) or 0)

    async def lock_owner(self, owner_id: uuid.UUID) -> None:
        """Hold the owner's row until the transaction ends, so the owner's concurrent uploads
        check the queue one after another (PostgreSQL; SQLite has one writer at a time)."""
        await self.session.execute(select(User.id).where(User.id == owner_id).with_for_update())

    async def list_for_owner(
        self, owner_id: uuid.UUID, *, offset: int, limit: int
    ) -> tuple[Sequence[Document], int]:
        condition = Document.owner_id == owner_id
        total = await self.session.scalar(
            select(func.count()).select_from(Document).where(condition)
        )
        result = await self.session.execute(
            select(Document)
            .where(condition)
            .order_by(Document.created_at.desc(), Document.id)
            .offset(offset)
            .limit(limit)
        )
        return result.scalars().all(), total or 0

    async def delete(self, document: Document) -> None:
        await self.session.execute(delete(Document).where(Document.id == document.id))

    async def requeue(self, document_id: uuid.UUID, *, from_status: DocumentStatus) -> bool:
        """Queue the job again (retry), if it is still in `from_status`."""
        result = await self.session.execute(
            update(Document)
            .where(Document.id == document_id, Document.status == from_status)
            .values(
                status=DocumentStatus.QUEUED,
                progress=0.0,
                error=None,
                attempts=0,
                lease_owner=None,
                lease_expires_at=None,
            )
        )
        return _changed_one(result)

    async def cancel(self, document_id: uuid.UUID) -> bool:
        """Cancel the job if it has not finished; a runner working on it notices within a
        second (`holds`)."""
        result = await self.session.execute(
            update(Document)
            .where(
                Document.id == document_id,
                Document.status.in_(UNFINISHED_STATUSES),
            )
            .values(status=DocumentStatus.CANCELLED, lease_owner=None, lease_expires_at=None)
        )
        return _changed_one(result)

    # The job side: claim, heartbeat, finish. Each runs in the runner's own short transaction.

    async def claim_next(
        self, runner_id: str, *, now: datetime, lease_until: datetime
    ) -> Document | None:
        """Take the oldest claimable job of an owner none of whose jobs is running, or `None`.

        One job per owner at a time is what keeps ingestion fair: a runner with free slots
        takes other owners' documents while one owner's large document is being ingested.

        PostgreSQL: the candidate row is locked with `FOR UPDATE SKIP LOCKED`, so concurrent
        runners each get a different job. SQLite (one writer at a time, no row locks): the
        conditional UPDATE below only succeeds for one runner; a loser tries the next candidate.
        """
        claimable = and_(_claimable(now), ~_owner_is_busy(now))
        for _ in range(CLAIM_RACE_RETRIES):
            candidate: uuid.UUID | None = await self.session.scalar(
                select(Document.id)
                .where(claimable)
                .order_by(Document.created_at, Document.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if candidate is None:
                return None
            result = await self.session.execute(
                update(Document)
                .where(Document.id == candidate, claimable)
                .values(
                    status=DocumentStatus.PARSING,
                    lease_owner=runner_id,
                    lease_expires_at=lease_until,
                    attempts=Document.attempts + 1,
                    progress=0.0,
                    error=None,
                )
            )
            if _changed_one(result):
                return await self.get(candidate)
        return None

    async def heartbeat(
        self,
        document_id: uuid.UUID,
        runner_id: str,
        *,
        status: DocumentStatus,
        progress: float,
        lease_until: datetime,
        page_count: int | None = None,
    ) -> bool:
        """Report progress and renew the lease. `False`: the job is no longer this runner's
        (cancelled, deleted, or claimed by another runner after the lease ran out)."""
        values: dict[str, object] = {
            "status": status,
            "progress": progress,
            "lease_expires_at": lease_until,
        }
        if page_count is not None:
            values["page_count"] = page_count
        result = await self.session.execute(
            update(Document).where(*self._held_by(document_id, runner_id)).values(**values)
        )
        return _changed_one(result)

    async def finish(
        self,
        document_id: uuid.UUID,
        runner_id: str,
        *,
        status: DocumentStatus,
        now: datetime,
        error: str | None = None,
        chunk_count: int | None = None,
    ) -> bool:
        values: dict[str, object] = {
            "status": status,
            "error": error,
            "lease_owner": None,
            "lease_expires_at": None,
        }
        if status is DocumentStatus.INDEXED:
            values.update(progress=1.0, indexed_at=now, chunk_count=chunk_count)
        result = await self.session.execute(
            update(Document).where(*self._held_by(document_id, runner_id)).values(**values)
        )
        return _changed_one(result)

    async def holds(self, document_id: uuid.UUID, runner_id: str) -> bool:
        """Whether the runner still holds the job (it was not cancelled, deleted or taken)."""
        held = await self.session.scalar(
            select(Document.id).where(*self._held_by(document_id, runner_id))
        )
        return held is not None

    async def release(
        self, document_id: uuid.UUID, runner_id: str, *, error: str | None = None
    ) -> bool:
        """Give a job back to the queue (the runner is stopping, or the job is to be tried
        again); its attempts so far still count."""
        result = await self.session.execute(
            update(Document)
            .where(*self._held_by(document_id, runner_id))
            .values(
                status=DocumentStatus.QUEUED,
                progress=0.0,
                error=error,
                lease_owner=None,
                lease_expires_at=None,
            )
        )
        return _changed_one(result)

    async def exhausted(self, *, now: datetime, max_attempts: int) -> Sequence[Document]:
        """Claimable jobs already tried `max_attempts` times (each attempt died with its runner)."""
        result = await self.session.execute(
            select(Document).where(_claimable(now), Document.attempts >= max_attempts)
        )
        return result.scalars().all()

    async def fail_exhausted(self, document_id: uuid.UUID, *, now: datetime, error: str) -> bool:
        result = await self.session.execute(
            update(Document)
            .where(Document.id == document_id, _claimable(now))
            .values(
                status=DocumentStatus.FAILED, error=error, lease_owner=None, lease_expires_at=None
            )
        )
        return _changed_one(result)

    @staticmethod
    def _held_by(document_id: uuid.UUID, runner_id: str) -> tuple[ColumnElement[bool], ...]:
        return (
            Document.id == document_id,
            Document.lease_owner == runner_id,
            Document.status.in_(RUNNING_STATUSES),
        )


@contextlib.asynccontextmanager
async def documents_in_transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[DocumentRepository]:
    """A repository in a short transaction of its own, committed on leaving (runners' writes)."""
    async with sessionmaker() as session, session.begin():
        yield DocumentRepository(session)


def _changed_one(result: object) -> bool:
    return getattr(result, "rowcount", 0) == 1
