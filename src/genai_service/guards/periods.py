"""The periods budgets count in: the UTC day and the UTC calendar month."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from genai_service.models.usage import BudgetPeriod


def day_start(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def month_start(moment: datetime) -> date:
    return day_start(moment).replace(day=1)


def next_month(first: date) -> date:
    return date(first.year + 1, 1, 1) if first.month == 12 else date(first.year, first.month + 1, 1)


@dataclass(frozen=True, slots=True)
class Periods:
    """The day and month a moment falls in."""

    day: date
    month: date

    @classmethod
    def at(cls, moment: datetime) -> Periods:
        return cls(day=day_start(moment), month=month_start(moment))

    def start(self, period: BudgetPeriod) -> date:
        return self.day if period is BudgetPeriod.DAY else self.month

    def starts_at(self, period: BudgetPeriod) -> datetime:
        return datetime.combine(self.start(period), time(), tzinfo=UTC)

    def resets_at(self, period: BudgetPeriod) -> datetime:
        """When the period ends and its counter starts from zero again."""
        end = self.day + timedelta(days=1) if period is BudgetPeriod.DAY else next_month(self.month)
        return datetime.combine(end, time(), tzinfo=UTC)
