"""The usage ledger's batches: every row written with its values, the daily rollup summing them,
and the rows sent as multi-row INSERTs rather than a statement run once per row."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from genai_service.guards.usage_repository import LEDGER_COLUMNS, LedgerEntry, UsageRepository
from genai_service.kit.db import create_engine, create_sessionmaker
from genai_service.migrations import upgrade_database
from genai_service.models.usage import DailyUsage, UsageRecord, UsageStatus

BATCH = 400


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await upgrade_database(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


def entries(user_id: uuid.UUID, count: int) -> list[LedgerEntry]:
    started = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
    return [
        LedgerEntry(
            id=uuid.uuid4(),
            user_id=user_id,
            api_key_id=None,
            model="model-a" if n % 2 else "model-b",
            purpose="chat",
            status=UsageStatus.COMPLETED,
            prompt_tokens=n,
            completion_tokens=2 * n,
            duration_ms=n,
            started_at=started + timedelta(milliseconds=n),
            day=started.date(),
        )
        for n in range(count)
    ]


async def test_a_batch_is_written_whole_in_multi_row_inserts(engine: AsyncEngine) -> None:
    sessionmaker: async_sessionmaker[AsyncSession] = create_sessionmaker(engine)
    user_id = uuid.uuid4()
    batch = entries(user_id, BATCH)
    placeholders: list[int] = []
    """Of each INSERT into the ledger: how many values it carries."""

    def seen(
        _conn: Any, _cursor: Any, statement: str, _parameters: Any, _context: Any, _many: bool
    ) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO USAGE_RECORDS"):
            placeholders.append(statement.count("?") + statement.count("$"))

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with sessionmaker.begin() as session:
            await UsageRepository(session).record_many(batch)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)

    # Not a one-row statement the driver runs once per row (executemany): the rows' values
    # are in the statements themselves, many rows each.
    assert sum(placeholders) == BATCH * len(LEDGER_COLUMNS)
    assert len(placeholders) <= 2
    async with sessionmaker() as session:
        rows = (
            await session.scalars(select(UsageRecord).where(UsageRecord.user_id == user_id))
        ).all()
        rollup = {
            row.model: (row.calls, row.prompt_tokens, row.completion_tokens)
            for row in await session.scalars(
                select(DailyUsage).where(DailyUsage.user_id == user_id)
            )
        }
        total = await session.scalar(
            select(func.sum(UsageRecord.completion_tokens)).where(UsageRecord.user_id == user_id)
        )
    assert {row.id for row in rows} == {entry.id for entry in batch}
    assert {(row.id, row.prompt_tokens, row.model) for row in rows} == {
        (entry.id, entry.prompt_tokens, entry.model) for entry in batch
    }
    assert all(row.api_key_id is None for row in rows)
    odd = [n for n in range(BATCH) if n % 2]
    even = [n for n in range(BATCH) if not n % 2]
    assert rollup == {
        "model-a": (len(odd), sum(odd), 2 * sum(odd)),
        "model-b": (len(even), sum(even), 2 * sum(even)),
    }
    assert total == 2 * sum(range(BATCH))
