"""Reading usage: a caller's budgets now, and admins' reports over days, models, users, keys."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from genai_service.gateway.caller import Caller
from genai_service.guards.budget_repository import BudgetRepository, CounterKey, counter_keys
from genai_service.guards.held import limit_of
from genai_service.guards.limits import limits_in_force
from genai_service.guards.periods import Periods
from genai_service.guards.schemas import (
    BudgetRead,
    KeyBudgetsRead,
    ModelUsageRead,
    TokenTotals,
    UsageMeRead,
    UsageRowRead,
)
from genai_service.guards.usage_repository import (
    Grouping,
    UsageFilter,
    UsageRepository,
    UsageTotals,
)
from genai_service.kit.db import utcnow
from genai_service.kit.errors import BadRequest
from genai_service.kit.pagination import PageParams
from genai_service.models.usage import BudgetCounter, BudgetSubject
from genai_service.settings import Limits, LimitsSettings


def totals_read(totals: UsageTotals) -> TokenTotals:
    return TokenTotals(
        calls=totals.calls,
        prompt_tokens=totals.prompt_tokens,
        completion_tokens=totals.completion_tokens,
        total_tokens=totals.prompt_tokens + totals.completion_tokens,
    )


class UsageService:
    def __init__(
        self,
        session: AsyncSession,
        settings: LimitsSettings,
        *,
        write_pending: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`write_pending`: writes what this process has not written yet of ended calls (their
        usage is written in batches), so a caller reads its last call."""
        self.session = session
        self.settings = settings
        self.write_pending = write_pending

    async def _written(self) -> None:
        if self.write_pending is not None:
            await self.write_pending()

    async def me(self, caller: Caller) -> UsageMeRead:
        await self._written()
        now = utcnow()
        periods = Periods.at(now)
        in_force = await limits_in_force(self.session, self.settings, caller)
        keys = counter_keys(caller.user_id, caller.api_key_id, periods.day, periods.month)
        counters = await BudgetRepository(self.session).counters(keys)
        models = await UsageRepository(self.session).by_model(
            caller.user_id, day=periods.day, month=periods.month
        )

        def budgets(subject: BudgetSubject, limits: Limits | None) -> dict[str, BudgetRead]:
            return {
                key.period.value: _budget(key, counters, periods, limit_of(limits, key.period))
                for key in keys
                if key.subject is subject
            }

        user = budgets(BudgetSubject.USER, in_force.user)
        key = None
        if caller.api_key_id is not None:
            own = budgets(BudgetSubject.KEY, in_force.key)
            key = KeyBudgetsRead(api_key_id=caller.api_key_id, **own)
        return UsageMeRead(
            **user,
            models=[
                ModelUsageRead(
                    model=usage.model, day=totals_read(usage.day), month=totals_read(usage.month)
                )
                for usage in models
            ],
            key=key,
        )

    async def report(
        self, where: UsageFilter, grouping: Sequence[Grouping], page: PageParams
    ) -> tuple[list[UsageRowRead], int]:
        if where.since > where.until:
            raise BadRequest("`from` must not be after `to`.", param="from")
        await self._written()
        unique = list(dict.fromkeys(grouping))
        groups, total = await UsageRepository(self.session).report(
            where, unique, offset=page.offset, limit=page.limit
        )
        rows = [
            UsageRowRead(
                day=group.day,
                model=group.model,
                user_id=group.user_id,
                email=group.email,
                api_key_id=group.api_key_id,
                **totals_read(group.totals).model_dump(),
            )
            for group in groups
        ]
        return rows, total


def _budget(
    key: CounterKey,
    counters: Mapping[CounterKey, BudgetCounter],
    periods: Periods,
    limit: int | None,
) -> BudgetRead:
    row = counters.get(key)
    used, reserved = (row.used, row.reserved) if row is not None else (0, 0)
    return BudgetRead(
        period=key.period,
        starts_at=periods.starts_at(key.period),
        resets_at=periods.resets_at(key.period),
        used=used,
        reserved=reserved,
        limit=limit,
        remaining=None if limit is None else max(limit - used - reserved, 0),
    )
