"""Budget tests' helpers: reading budgets and the ledger straight from the database, and setting
limits through the API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from genai_service.kit.db import utcnow
from genai_service.models.usage import (
    BudgetCounter,
    BudgetPeriod,
    BudgetReservation,
    BudgetSubject,
    DailyUsage,
    UsageRecord,
)
from tests.identity import Account


@dataclass(frozen=True)
class BudgetState:
    """One subject's day counter, and the ledger rows and reservations of the user."""

    used: int
    reserved: int
    ledger_tokens: int
    ledger_calls: int
    rollup_tokens: int
    reservations: int
    statuses: dict[str, int]

    @property
    def exact(self) -> bool:
        """Nothing held, and the counter says what the ledger and its rollup say."""
        return self.reserved == 0 and self.reservations == 0 and self.used == self.ledger_tokens


async def budget_state(
    sessionmaker: async_sessionmaker[AsyncSession],
    user_id: str | uuid.UUID,
    *,
    key_id: str | uuid.UUID | None = None,
) -> BudgetState:
    """The user's (or, with `key_id`, the key's) counter of today, and its ledger."""
    user = uuid.UUID(str(user_id))
    subject, subject_id = (BudgetSubject.USER, user)
    if key_id is not None:
        subject, subject_id = (BudgetSubject.KEY, uuid.UUID(str(key_id)))
    on_ledger = UsageRecord.user_id == user
    if key_id is not None:
        on_ledger = UsageRecord.api_key_id == subject_id
    async with sessionmaker() as session:
        counter = await session.scalar(
            select(BudgetCounter).where(
                BudgetCounter.subject == subject,
                BudgetCounter.subject_id == subject_id,
                BudgetCounter.period == BudgetPeriod.DAY,
                BudgetCounter.starts_on == utcnow().date(),
            )
        )
        ledger = (
            await session.execute(
                select(
                    func.coalesce(
                        func.sum(UsageRecord.prompt_tokens + UsageRecord.completion_tokens), 0
                    ),
                    func.count(),
                ).where(on_ledger)
            )
        ).one()
        on_rollup = DailyUsage.user_id == user
        if key_id is not None:
            on_rollup = DailyUsage.api_key_id == subject_id
        rollup = await session.scalar(
            select(
                func.coalesce(func.sum(DailyUsage.prompt_tokens + DailyUsage.completion_tokens), 0)
            ).where(on_rollup)
        )
        reservations = await session.scalar(
            select(func.count())
            .select_from(BudgetReservation)
            .where(BudgetReservation.user_id == user)
        )
        statuses = dict(
            (
                await session.execute(
                    select(UsageRecord.status, func.count())
                    .where(on_ledger)
                    .group_by(UsageRecord.status)
                )
            ).all()
        )
    return BudgetState(
        used=counter.used if counter is not None else 0,
        reserved=counter.reserved if counter is not None else 0,
        ledger_tokens=int(ledger[0]),
        ledger_calls=int(ledger[1]),
        rollup_tokens=int(rollup or 0),
        reservations=int(reservations or 0),
        statuses={str(status): count for status, count in statuses.items()},
    )


async def set_user_limits(
    client: httpx.AsyncClient, admin: Account, user: Account, **limits: Any
) -> dict[str, Any]:
    response = await client.put(f"/api/users/{user.id}/limits", json=limits, headers=admin.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
