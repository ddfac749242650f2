"""The guards' errors: a budget a call does not fit in, and limits that cannot be set."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from genai_service.kit.errors import AppError, BadRequest, ServiceUnavailable
from genai_service.models.usage import BudgetPeriod, BudgetSubject


@dataclass(frozen=True, slots=True)
class BudgetShortfall:
    """Where a call did not fit: the counter, its limit, and what it held at the time."""

    subject: BudgetSubject
    period: BudgetPeriod
    limit: int
    used: int
    reserved: int
    requested: int
    resets_at: datetime

    @property
    def limit_name(self) -> str:
        return f"tokens_per_{self.period.value}"

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used - self.reserved, 0)


class BudgetExceeded(AppError):
    """A `429` with what remains, so the client can lower `max_tokens` or wait; OpenAI's
    `insufficient_quota` under `/v1`."""

    status_code = 429
    title = "Budget exceeded"
    slug = "budget-exceeded"
    openai_type = "insufficient_quota"
    openai_code = "insufficient_quota"

    def __init__(
        self, shortfall: BudgetShortfall, *, needs: str, remedy: str, now: datetime
    ) -> None:
        """`needs`: what the call reserves, as the message starts ("This call needs up to 612
        tokens (...)"); `remedy`: what the caller can do."""
        whose = "your" if shortfall.subject is BudgetSubject.USER else "this API key's"
        period = shortfall.period.value
        of_limit = f"{whose} {shortfall.limit} tokens per {period}"
        resets = shortfall.resets_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        if shortfall.requested > shortfall.limit:
            advice = f"it can never fit in {of_limit}"
        else:
            advice = f"{shortfall.remaining} of {of_limit} remain"
        detail = f"{needs}, but {advice} until {resets}; {remedy}."
        retry_after = max(math.ceil((shortfall.resets_at - now).total_seconds()), 1)
        super().__init__(
            detail,
            headers={"Retry-After": str(retry_after)},
            extra={
                "limit": shortfall.limit_name,
                "subject": shortfall.subject.value,
                "period": period,
                "limit_tokens": shortfall.limit,
                "used": shortfall.used,
                "reserved": shortfall.reserved,
                "remaining": shortfall.remaining,
                "requested": shortfall.requested,
                "resets_at": shortfall.resets_at.isoformat(),
            },
        )


class KeyLimitAboveOwner(BadRequest):
    title = "Key limit above its owner's"
    slug = "key-limit-above-owner"


class BudgetUnavailable(ServiceUnavailable):
    """The budgets could not be read or reserved (the database refused or timed out): the call
    is not run, and may be sent again."""

    slug = "budget-unavailable"


class LimitsUnavailable(ServiceUnavailable):
    """A caller's limits could not be read (the database refused or timed out): the call is not
    run, and may be sent again."""

    slug = "limits-unavailable"
