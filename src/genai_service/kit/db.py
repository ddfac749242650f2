"""Async SQLAlchemy: the declarative base, engine construction and the request-scoped session."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from loguru import logger
from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime}


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


_AFTER_COMMIT = "genai_service.after_commit"
_AWAIT_AFTER_COMMIT = "genai_service.await_after_commit"
_STARTED_AFTER_COMMIT = "genai_service.started_after_commit"
_RUNNING_AFTER_COMMIT: set[asyncio.Task[None]] = set()


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run `callback` once the session's current transaction has committed; never if it rolls back.

    For effects outside the database that must not run ahead of the data they describe (a
    cache entry dropped too early could be filled again from the old rows).
    """
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


def await_after_commit(session: AsyncSession, callback: Callable[[], Awaitable[None]]) -> None:
    """Start `callback` once the session's current transaction has committed; never if it rolls
    back. A request's session (`request_session`) waits for it before the response is sent, so
    what it tells other processes is told before the client hears of the change."""
    session.info.setdefault(_AWAIT_AFTER_COMMIT, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    for callback in session.info.pop(_AFTER_COMMIT, ()):
        callback()
    awaited = session.info.pop(_AWAIT_AFTER_COMMIT, ())
    if awaited:
        loop = asyncio.get_running_loop()
        for start in awaited:
            task = loop.create_task(_awaited(start))
            _RUNNING_AFTER_COMMIT.add(task)
            task.add_done_callback(_RUNNING_AFTER_COMMIT.discard)
            session.info.setdefault(_STARTED_AFTER_COMMIT, []).append(task)


async def _awaited(start: Callable[[], Awaitable[None]]) -> None:
    await start()


@event.listens_for(Session, "after_rollback")
def _drop_after_commit(session: Session) -> None:
    session.info.pop(_AFTER_COMMIT, None)
    session.info.pop(_AWAIT_AFTER_COMMIT, None)


async def _finish_after_commit(session: AsyncSession) -> None:
    started: list[asyncio.Task[None]] = session.info.pop(_STARTED_AFTER_COMMIT, [])
    for outcome in await asyncio.gather(*started, return_exceptions=True):
        if isinstance(outcome, BaseException):
            logger.opt(exception=outcome).error("an after-commit action failed")


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def insert_with_conflicts(
    session: AsyncSession, entity: type[Base]
) -> postgresql.Insert | sqlite.Insert:
    """An INSERT of `entity` that can say `ON CONFLICT DO NOTHING / DO UPDATE`, in the dialect
    of the session's database (both spell it alike; SQLAlchemy's generic INSERT cannot)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(entity)
    return sqlite.insert(entity)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@contextlib.asynccontextmanager
async def request_session(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One session for one request: committed once when the endpoint succeeds, rolled back
    otherwise.

    Used by a dependency with `scope="function"`, the commit happens before the response is
    sent: a client never sees a success for data that failed to commit.
    """
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()
            await _finish_after_commit(session)
