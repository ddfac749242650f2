"""A model call's hold on its caller's budget, as admission gives it and settlement needs it:
whose counters it moves, in which periods, how many tokens, and the ledger row it ends as."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from genai_service.gateway.caller import Caller
from genai_service.guards.budget_repository import CounterCheck, CounterKey, counter_keys
from genai_service.guards.limits import LimitsInForce
from genai_service.guards.periods import Periods
from genai_service.guards.usage_repository import LedgerEntry
from genai_service.models.usage import BudgetPeriod, BudgetReservation, BudgetSubject, UsageStatus
from genai_service.settings import Limits


@dataclass(frozen=True, slots=True)
class Held:
    """A reservation as its settlement needs it."""

    id: uuid.UUID
    user_id: uuid.UUID
    api_key_id: uuid.UUID | None
    day: date
    month: date
    tokens: int
    prompt_tokens: int
    model: str
    purpose: str
    started_at: datetime
    reserved: bool = False
    """Whether a reservation row of its own holds the call's tokens (else it drew them from
    an allotment, or no budget limits it)."""

    @classmethod
    def of(cls, row: BudgetReservation) -> Held:
        return cls(
            id=row.id,
            user_id=row.user_id,
            api_key_id=row.api_key_id,
            day=row.day,
            month=row.month,
            tokens=row.tokens,
            prompt_tokens=row.prompt_tokens,
            model=row.model,
            purpose=row.purpose,
            started_at=row.created_at,
            reserved=True,
        )

    def reservation(self, holder: str, expires_at: datetime) -> BudgetReservation:
        """The row that holds this call's tokens, under `holder`'s lease."""
        return BudgetReservation(
            id=self.id,
            user_id=self.user_id,
            api_key_id=self.api_key_id,
            day=self.day,
            month=self.month,
            tokens=self.tokens,
            prompt_tokens=self.prompt_tokens,
            model=self.model,
            purpose=self.purpose,
            holder=holder,
            expires_at=expires_at,
            created_at=self.started_at,
        )

    @property
    def counters(self) -> list[CounterKey]:
        return counter_keys(self.user_id, self.api_key_id, self.day, self.month)

    def record(
        self, status: UsageStatus, prompt: int, completion: int, duration_ms: int | None
    ) -> LedgerEntry:
        return LedgerEntry(
            id=self.id,
            user_id=self.user_id,
            api_key_id=self.api_key_id,
            model=self.model,
            purpose=self.purpose,
            status=status,
            prompt_tokens=prompt,
            completion_tokens=completion,
            duration_ms=duration_ms,
            started_at=self.started_at,
            day=self.day,
        )

    def interrupted(self) -> LedgerEntry:
        """The ledger row of a call whose process stopped: charged all it held."""
        return self.record(
            UsageStatus.INTERRUPTED, self.prompt_tokens, self.tokens - self.prompt_tokens, None
        )


def limit_of(limits: Limits | None, period: BudgetPeriod) -> int | None:
    if limits is None:
        return None
    return limits.tokens_per_day if period is BudgetPeriod.DAY else limits.tokens_per_month


def counter_checks(caller: Caller, in_force: LimitsInForce, periods: Periods) -> list[CounterCheck]:
    own = {BudgetSubject.USER: in_force.user, BudgetSubject.KEY: in_force.key}
    return [
        CounterCheck(key, limit_of(own[key.subject], key.period))
        for key in counter_keys(caller.user_id, caller.api_key_id, periods.day, periods.month)
    ]
