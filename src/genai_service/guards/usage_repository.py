"""The SQL of usage: the ledger (a row per model call), its daily rollup, and the reports read
from the rollup.

The rollup is upserted in the transaction that writes the ledger row, so it always sums the
ledger exactly; reports read it instead of the ledger, so they cost the same at a million calls
as at ten (a user's month is at most a row per day, model and key, found through the primary
key, which starts with the user).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any, Literal, cast

from sqlalchemy import ColumnElement, Select, Table, case, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from genai_service.kit.db import insert_with_conflicts
from genai_service.models.usage import NO_KEY, DailyUsage, UsageRecord, UsageStatus
from genai_service.models.user import User

Grouping = Literal["day", "model", "user", "key"]


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """The ledger row of one model call (`UsageRecord`), as plain values: calls end by the
    thousand, and are written in batches."""

    id: uuid.UUID
    user_id: uuid.UUID
    api_key_id: uuid.UUID | None
    model: str
    purpose: str
    status: UsageStatus
    prompt_tokens: int
    completion_tokens: int
    duration_ms: int | None
    started_at: datetime
    day: date


LEDGER_COLUMNS = tuple(field.name for field in fields(LedgerEntry))
LEDGER_TABLE = cast(Table, UsageRecord.__table__)
"""Written as a table, not ORM objects: the rows of a batch go to the database as they are."""


@dataclass(frozen=True, slots=True)
class UsageTotals:
    calls: int
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class ModelUsage:
    model: str
    day: UsageTotals
    month: UsageTotals


@dataclass(frozen=True, slots=True)
class UsageFilter:
    since: date
    until: date
    """Inclusive."""
    user_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None
    model: str | None = None


@dataclass(frozen=True, slots=True)
class UsageGroup:
    """One row of a report: the values of its grouping (the others `None`) and its sums."""

    day: date | None
    model: str | None
    user_id: uuid.UUID | None
    email: str | None
    api_key_id: uuid.UUID | None
    totals: UsageTotals


def _totals(calls: Any, prompt: Any, completion: Any) -> UsageTotals:
    return UsageTotals(int(calls or 0), int(prompt or 0), int(completion or 0))


class UsageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(self, record: LedgerEntry) -> None:
        """Write the ledger row of a call and add it to its day's rollup."""
        await self.record_many([record])

    async def record_many(self, records: Sequence[LedgerEntry]) -> None:
        """Write the ledger rows of calls and add them to their days' rollup: multi-row INSERTs
        for the rows, a statement per rollup row they add to.

        With `RETURNING`, SQLAlchemy sends the rows as multi-row INSERTs ("insertmanyvalues",
        as many rows per statement as the database's parameter limit allows); without it, the
        SQLite dialect hands them to the driver's executemany, which runs the statement once
        per row and takes the GIL back after each, waiting on the busy event loop row by row:
        the server spent 0.18 ms more CPU per model call that way (docs/benchmarks.md)."""
        if not records:
            return
        written = await self.session.execute(
            insert(LEDGER_TABLE).returning(LEDGER_TABLE.c.id),
            [{name: getattr(r, name) for name in LEDGER_COLUMNS} for r in records],
        )
        written.all()  # the ids are not needed: RETURNING is asked for the batching
        rollup: dict[tuple[str, date, str, str], list[int]] = {}
        for r in records:
            key = (str(r.user_id), r.day, str(r.api_key_id or NO_KEY), r.model)
            sums = rollup.setdefault(key, [0, 0, 0])
            sums[0] += 1
            sums[1] += r.prompt_tokens
            sums[2] += r.completion_tokens
        # In key order: two batches add to shared rows in the same order, never in a cycle.
        for (user_id, day, api_key_id, model), (calls, prompt, completion) in sorted(
            rollup.items()
        ):
            upsert = insert_with_conflicts(self.session, DailyUsage).values(
                user_id=uuid.UUID(user_id),
                day=day,
                api_key_id=uuid.UUID(api_key_id),
                model=model,
                calls=calls,
                prompt_tokens=prompt,
                completion_tokens=completion,
            )
            await self.session.execute(
                upsert.on_conflict_do_update(
                    index_elements=["user_id", "day", "api_key_id", "model"],
                    set_={
                        "calls": DailyUsage.calls + upsert.excluded.calls,
                        "prompt_tokens": DailyUsage.prompt_tokens + upsert.excluded.prompt_tokens,
                        "completion_tokens": (
                            DailyUsage.completion_tokens + upsert.excluded.completion_tokens
                        ),
                    },
                )
            )

    async def by_model(self, user_id: uuid.UUID, *, day: date, month: date) -> list[ModelUsage]:
        """A user's calls per model on `day` and in the month starting on `month`."""
        today = DailyUsage.day == day

        def on_day(column: InstrumentedAttribute[int]) -> ColumnElement[int]:
            return func.sum(case((today, column), else_=0))

        result = await self.session.execute(
            select(
                DailyUsage.model,
                on_day(DailyUsage.calls),
                on_day(DailyUsage.prompt_tokens),
                on_day(DailyUsage.completion_tokens),
                func.sum(DailyUsage.calls),
                func.sum(DailyUsage.prompt_tokens),
                func.sum(DailyUsage.completion_tokens),
            )
            .where(DailyUsage.user_id == user_id, DailyUsage.day >= month, DailyUsage.day <= day)
            .group_by(DailyUsage.model)
            .order_by(DailyUsage.model)
        )
        return [
            ModelUsage(model=row[0], day=_totals(*row[1:4]), month=_totals(*row[4:7]))
            for row in result.all()
        ]

    async def report(
        self, where: UsageFilter, grouping: Sequence[Grouping], *, offset: int, limit: int
    ) -> tuple[list[UsageGroup], int]:
        """Sums per group (one row of everything without `grouping`), groups in order, and how
        many groups there are."""
        query = self._grouped(where, grouping)
        total = await self.session.scalar(select(func.count()).select_from(query.subquery()))
        rows = (await self.session.execute(query.offset(offset).limit(limit))).all()
        return [self._group(row._mapping, grouping) for row in rows], int(total or 0)

    def _grouped(self, where: UsageFilter, grouping: Sequence[Grouping]) -> Select[Any]:
        columns: dict[Grouping, list[Any]] = {
            "day": [DailyUsage.day],
            "model": [DailyUsage.model],
            "user": [DailyUsage.user_id, User.email],
            "key": [DailyUsage.api_key_id],
        }
        grouped = [column for name in grouping for column in columns[name]]
        query = (
            select(
                *grouped,
                func.sum(DailyUsage.calls).label("calls"),
                func.sum(DailyUsage.prompt_tokens).label("prompt_tokens"),
                func.sum(DailyUsage.completion_tokens).label("completion_tokens"),
            )
            .where(DailyUsage.day >= where.since, DailyUsage.day <= where.until)
            .group_by(*grouped)
            .order_by(*grouped)
        )
        if "user" in grouping:
            query = query.outerjoin(User, User.id == DailyUsage.user_id)
        if where.user_id is not None:
            query = query.where(DailyUsage.user_id == where.user_id)
        if where.api_key_id is not None:
            query = query.where(DailyUsage.api_key_id == where.api_key_id)
        if where.model is not None:
            query = query.where(DailyUsage.model == where.model)
        return query

    @staticmethod
    def _group(row: Any, grouping: Sequence[Grouping]) -> UsageGroup:
        key = row["api_key_id"] if "key" in grouping else None
        return UsageGroup(
            day=row["day"] if "day" in grouping else None,
            model=row["model"] if "model" in grouping else None,
            user_id=row["user_id"] if "user" in grouping else None,
            email=row["email"] if "user" in grouping else None,
            api_key_id=None if key == NO_KEY else key,
            totals=_totals(row["calls"], row["prompt_tokens"], row["completion_tokens"]),
        )
