"""Token budgets and the usage ledger: counters per subject and period, the reservations held
by calls in flight, a row per model call, and a daily rollup of those rows.

Counters are rows, never computed from the ledger: a budget is checked by one conditional
UPDATE of its counter, which is what keeps concurrent calls, in any process, from passing it.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Enum, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from genai_service.kit.db import Base, utcnow

NO_KEY = uuid.UUID(int=0)
"""`DailyUsage.api_key_id` of calls made without an API key. The rollup's key columns must all
be non-null for `INSERT ... ON CONFLICT` to find the row on both databases (a NULL is distinct
from every other NULL in a unique index)."""


class BudgetSubject(StrEnum):
    USER = "user"
    KEY = "key"


class BudgetPeriod(StrEnum):
    DAY = "day"
    MONTH = "month"


class UsageStatus(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    """The process making the call stopped; its reservation ran out and was charged in full."""


def _text_enum(enum: type[StrEnum], length: int) -> Enum:
    return Enum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=lambda members: [member.value for member in members],
    )


class BudgetCounter(Base):
    """Tokens of one subject (a user or an API key) in one period (a UTC day or month)."""

    __tablename__ = "budget_counters"
    __table_args__ = (
        CheckConstraint("subject IN ('user', 'key')", name="subject"),
        CheckConstraint("period IN ('day', 'month')", name="period"),
        CheckConstraint("used >= 0", name="used_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
    )

    subject: Mapped[BudgetSubject] = mapped_column(_text_enum(BudgetSubject, 8), primary_key=True)
    subject_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    """A user's or an API key's id (no foreign key: it is either)."""
    period: Mapped[BudgetPeriod] = mapped_column(_text_enum(BudgetPeriod, 8), primary_key=True)
    starts_on: Mapped[date] = mapped_column(primary_key=True)
    """The period's first day: a new period is a new row, so nothing has to reset counters."""
    used: Mapped[int] = mapped_column(BigInteger)
    """Tokens of the calls settled in this period."""
    reserved: Mapped[int] = mapped_column(BigInteger)
    """Tokens held by calls in flight: the most each may still use."""


class BudgetReservation(Base):
    """What one call in flight holds, until it is settled or its lease runs out."""

    __tablename__ = "budget_reservations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    """Also the id of the call's ledger row: a call is never recorded twice."""
    user_id: Mapped[uuid.UUID]
    api_key_id: Mapped[uuid.UUID | None]
    day: Mapped[date]
    """The day and month whose counters hold the tokens (those of the call's start)."""
    month: Mapped[date]
    tokens: Mapped[int] = mapped_column(BigInteger)
    """Held on every counter of the caller: the prompt plus the most the reply may take."""
    prompt_tokens: Mapped[int] = mapped_column(BigInteger)
    model: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(16))
    holder: Mapped[str] = mapped_column(String(80), index=True)
    """The process making the call, which renews `expires_at` while it lives."""
    expires_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class UsageRecord(Base):
    """The ledger: one row per settled model call."""

    __tablename__ = "usage_records"
    __table_args__ = (
        CheckConstraint(
            "status IN ('completed', 'failed', 'cancelled', 'interrupted')", name="status"
        ),
        Index("ix_usage_records_user_id_started_at", "user_id", "started_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID]
    """No foreign keys: the ledger outlives the users and keys it names (an audit trail)."""
    api_key_id: Mapped[uuid.UUID | None]
    model: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(16))
    status: Mapped[UsageStatus] = mapped_column(_text_enum(UsageStatus, 16))
    prompt_tokens: Mapped[int] = mapped_column(BigInteger)
    completion_tokens: Mapped[int] = mapped_column(BigInteger)
    duration_ms: Mapped[int | None]
    """`None` for an interrupted call: nobody saw it end."""
    started_at: Mapped[datetime]
    day: Mapped[date]
    """The UTC day the call was charged to (its start's)."""


class DailyUsage(Base):
    """The ledger summed per day, user, key and model, kept in the settlement's transaction:
    usage reports read these rows instead of the ledger's."""

    __tablename__ = "usage_daily"
    __table_args__ = (Index("ix_usage_daily_day", "day"),)

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    api_key_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    """`NO_KEY` for calls without an API key."""
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    calls: Mapped[int] = mapped_column(BigInteger)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger)
    completion_tokens: Mapped[int] = mapped_column(BigInteger)
