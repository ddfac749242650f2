"""The SQL of budgets: counters per subject and period, and the reservations that hold them.

Every check of a budget is one conditional UPDATE of its counter row — `reserved + n` only
where `used + reserved + n` stays within the limit. On PostgreSQL a concurrent UPDATE of the
row waits for the first to commit and then evaluates its condition again on the new row; on
SQLite one writer at a time runs it. Either way no two calls can both take the last tokens, in
one process or several.

Counter rows are touched in one order (the user's day, its month, the key's day, its month), so
two transactions never wait for each other's rows in a cycle.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, CursorResult, and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from genai_service.kit.db import insert_with_conflicts
from genai_service.models.usage import BudgetCounter, BudgetPeriod, BudgetReservation, BudgetSubject


@dataclass(frozen=True, slots=True)
class CounterKey:
    subject: BudgetSubject
    subject_id: uuid.UUID
    period: BudgetPeriod
    starts_on: date


@dataclass(frozen=True, slots=True)
class CounterMove:
    """Tokens added to a counter's `used` and `reserved` (negative: taken off)."""

    key: CounterKey
    used: int
    reserved: int


@dataclass(frozen=True, slots=True)
class CounterCheck:
    key: CounterKey
    limit: int | None
    """`None`: the counter is kept, not checked."""


def counter_keys(
    user_id: uuid.UUID, api_key_id: uuid.UUID | None, day: date, month: date
) -> list[CounterKey]:
    """The counters a call of this caller moves, in the order they are locked."""
    subjects = [(BudgetSubject.USER, user_id)]
    if api_key_id is not None:
        subjects.append((BudgetSubject.KEY, api_key_id))
    return [
        CounterKey(subject, subject_id, period, starts_on)
        for subject, subject_id in subjects
        for period, starts_on in ((BudgetPeriod.DAY, day), (BudgetPeriod.MONTH, month))
    ]


def _is(key: CounterKey) -> ColumnElement[bool]:
    return and_(
        BudgetCounter.subject == key.subject,
        BudgetCounter.subject_id == key.subject_id,
        BudgetCounter.period == key.period,
        BudgetCounter.starts_on == key.starts_on,
    )


def _changed(result: object) -> int:
    return result.rowcount if isinstance(result, CursorResult) else 0


class BudgetRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def reserve(
        self, checks: Sequence[CounterCheck], reservation: BudgetReservation
    ) -> CounterKey | None:
        """Hold `reservation.tokens` on every counter and store the reservation; or the first
        counter whose limit it would pass (then roll the transaction back: some counters may
        already hold it)."""
        await self._create(checks)
        tokens = reservation.tokens
        for check in checks:
            statement = (
                update(BudgetCounter)
                .where(_is(check.key))
                .values(reserved=BudgetCounter.reserved + tokens)
            )
            if check.limit is not None:
                statement = statement.where(
                    BudgetCounter.used + BudgetCounter.reserved + tokens <= check.limit
                )
            if _changed(await self.session.execute(statement)) != 1:
                return check.key
        self.session.add(reservation)
        await self.session.flush()
        return None

    async def _create(self, checks: Sequence[CounterCheck]) -> None:
        """The counters' rows, where they do not exist yet (the first call of a period)."""
        rows = [
            {
                "subject": check.key.subject,
                "subject_id": check.key.subject_id,
                "period": check.key.period,
                "starts_on": check.key.starts_on,
                "used": 0,
                "reserved": 0,
            }
            for check in checks
        ]
        insert = insert_with_conflicts(self.session, BudgetCounter)
        await self.session.execute(insert.values(rows).on_conflict_do_nothing())

    async def move(self, moves: Sequence[CounterMove]) -> None:
        """Move each counter by its sums, in the order given (the order rows are locked)."""
        if not moves:
            return
        await self._create([CounterCheck(move.key, None) for move in moves])
        for move in moves:
            await self.session.execute(
                update(BudgetCounter)
                .where(_is(move.key))
                .values(
                    used=BudgetCounter.used + move.used,
                    reserved=BudgetCounter.reserved + move.reserved,
                )
            )

    async def shrink(self, reservation_id: uuid.UUID, tokens: int) -> bool:
        """Take `tokens` off what a reservation holds; `False` when it is gone."""
        result = await self.session.execute(
            update(BudgetReservation)
            .where(BudgetReservation.id == reservation_id)
            .values(tokens=BudgetReservation.tokens - tokens)
        )
        return _changed(result) == 1

    async def drop(self, reservation_id: uuid.UUID) -> bool:
        """Delete a reservation given back whole; `False` when it is gone."""
        result = await self.session.execute(
            delete(BudgetReservation).where(BudgetReservation.id == reservation_id)
        )
        return _changed(result) == 1

    async def release(
        self,
        reservation_id: uuid.UUID,
        keys: Sequence[CounterKey],
        *,
        held: int,
        charged: int,
        expired_before: datetime | None = None,
    ) -> bool:
        """Remove the reservation and move its counters from `held` reserved tokens to
        `charged` used ones. `False`, changing nothing, when the reservation is gone (settled
        or swept already) or (`expired_before`) was renewed since."""
        condition = BudgetReservation.id == reservation_id
        if expired_before is not None:
            condition &= BudgetReservation.expires_at < expired_before
        removed = await self.session.execute(delete(BudgetReservation).where(condition))
        if _changed(removed) != 1:
            return False
        for key in keys:
            await self.session.execute(
                update(BudgetCounter)
                .where(_is(key))
                .values(
                    reserved=BudgetCounter.reserved - held,
                    used=BudgetCounter.used + charged,
                )
            )
        return True

    async def counters(self, keys: Sequence[CounterKey]) -> dict[CounterKey, BudgetCounter]:
        """The rows of these counters that exist (a period without calls has none)."""
        found: dict[CounterKey, BudgetCounter] = {}
        for key in keys:
            row = await self.session.scalar(select(BudgetCounter).where(_is(key)))
            if row is not None:
                found[key] = row
        return found

    async def renew(self, holder: str, expires_at: datetime) -> int:
        """Extend every reservation of `holder`, in one statement; how many it holds."""
        result = await self.session.execute(
            update(BudgetReservation)
            .where(BudgetReservation.holder == holder)
            .values(expires_at=expires_at)
        )
        return _changed(result)

    async def expired(self, now: datetime, *, limit: int) -> Sequence[BudgetReservation]:
        """Reservations whose holder stopped renewing them, oldest first."""
        result = await self.session.scalars(
            select(BudgetReservation)
            .where(BudgetReservation.expires_at < now)
            .order_by(BudgetReservation.expires_at)
            .limit(limit)
        )
        return result.all()

    async def of_holder(self, holder: str) -> Sequence[BudgetReservation]:
        result = await self.session.scalars(
            select(BudgetReservation).where(BudgetReservation.holder == holder)
        )
        return result.all()
