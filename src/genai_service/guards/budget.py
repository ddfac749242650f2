"""The budget guard: token budgets per user and key, per UTC day and month, that no number of
concurrent calls, processes, crashes or disconnects can push usage past.

Admission reserves what the call may use at most (its prompt plus `max_tokens`; an embedding's
input) on every counter of its caller — the user's day and month, and its key's when it came
with one — in one transaction, with a conditional UPDATE per limited counter; a counter without
a limit is kept but not checked, so usage is known before anyone sets a limit. Settlement, once
the call ended however it ended, removes the reservation, moves the counters from what was held
to what was used and writes the ledger row, in one transaction.

A reservation carries the process that holds it and an expiry that process renews
(`leases.ReservationLeases`). One of a process that stopped runs out, and a sweep any process
runs charges it in full — nobody saw how much of it was used — and records it as interrupted.
The reservation row is deleted by exactly one of settlement and sweep (a conditional DELETE),
and only that one writes the counters and the ledger row, so nothing is counted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from loguru import logger
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from genai_service.gateway.caller import Caller
from genai_service.gateway.guards import CallOutcome, ModelCall
from genai_service.guards.budget_repository import (
    BudgetRepository,
    CounterCheck,
    CounterKey,
    counter_keys,
)
from genai_service.guards.errors import BudgetExceeded, BudgetShortfall, BudgetUnavailable
from genai_service.guards.limits import LimitsInForce, LimitsSource
from genai_service.guards.periods import Periods
from genai_service.guards.usage_repository import UsageRepository
from genai_service.kit.db import utcnow
from genai_service.models.usage import (
    BudgetPeriod,
    BudgetReservation,
    BudgetSubject,
    UsageRecord,
    UsageStatus,
)
from genai_service.settings import Limits

SWEEP_BATCH = 100
"""Expired reservations released per sweep query."""


def new_holder_id() -> str:
    """This process, as reservations name their holder: unique per start of a process."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


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
    reserved: bool = True
    """Whether a reservation row holds the call's tokens; a call no budget limits is not
    reserved, only charged when it ends."""

    @classmethod
    def of(cls, row: BudgetReservation, *, reserved: bool = True) -> Held:
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
            reserved=reserved,
        )

    @property
    def counters(self) -> list[CounterKey]:
        return counter_keys(self.user_id, self.api_key_id, self.day, self.month)

    def record(
        self, status: UsageStatus, prompt: int, completion: int, duration_ms: int | None
    ) -> UsageRecord:
        return UsageRecord(
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

    def interrupted(self) -> UsageRecord:
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


def _refusal(call: ModelCall, shortfall: BudgetShortfall, now: datetime) -> BudgetExceeded:
    tokens = call.most_tokens
    if call.purpose == "ingestion":
        needs = f"Embedding this document needs {tokens} tokens"
        remedy = "retry it once the budget resets, or split it into smaller documents"
    elif call.kind == "embedding":
        needs = f"This call needs {tokens} tokens (its input)"
        remedy = "send less input, or wait"
    else:
        needs = (
            f"This call needs up to {tokens} tokens (a prompt of {call.prompt_tokens} and "
            f"max_tokens {call.max_completion_tokens})"
        )
        remedy = "ask for fewer tokens (max_tokens), or wait"
    return BudgetExceeded(shortfall, needs=needs, remedy=remedy, now=now)


@dataclass(slots=True)
class BudgetAdmission:
    guard: BudgetGuard
    held: Held
    headers: Mapping[str, str] = field(default_factory=dict)

    async def settle(self, outcome: CallOutcome) -> None:
        record = self.held.record(
            UsageStatus(outcome.status),
            outcome.prompt_tokens,
            outcome.completion_tokens,
            outcome.duration_ms,
        )
        await self.guard.settle(self.held, record)


class BudgetGuard:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        limits: LimitsSource,
        *,
        lease_seconds: float,
        holder: str | None = None,
        one_writer: bool = False,
    ) -> None:
        """`one_writer`: the database runs one write transaction at a time (SQLite). This
        process's budget transactions then wait for each other here, first come first served,
        instead of in the database's busy wait, which is unfair and under load outlasts its
        timeout ("database is locked")."""
        self._writes: contextlib.AbstractAsyncContextManager[object] = (
            asyncio.Lock() if one_writer else contextlib.nullcontext()
        )
        self.sessionmaker = sessionmaker
        self.limits = limits
        self.lease = timedelta(seconds=lease_seconds)
        self.holder = holder or new_holder_id()
        self._unsettled: dict[uuid.UUID, tuple[Held, UsageRecord]] = {}
        """Settlements that failed (the database was unreachable), tried again by the leases."""

    async def admit(self, call: ModelCall) -> BudgetAdmission:
        """Reserve `call.most_tokens` on every counter of the caller, or raise `BudgetExceeded`
        for the first limited counter it does not fit in (holding nothing). A caller no budget
        limits reserves nothing: its call is only charged when it ends (so the in-flight calls
        of a process that is killed are not in its ledger)."""
        in_force = await self.limits.limits_for(call.caller)
        now = utcnow()
        periods = Periods.at(now)
        checks = counter_checks(call.caller, in_force, periods)
        reservation = BudgetReservation(
            id=uuid.uuid4(),
            user_id=call.caller.user_id,
            api_key_id=call.caller.api_key_id,
            day=periods.day,
            month=periods.month,
            tokens=call.most_tokens,
            prompt_tokens=call.prompt_tokens,
            model=call.model,
            purpose=call.purpose,
            holder=self.holder,
            expires_at=now + self.lease,
            created_at=now,
        )
        if all(check.limit is None for check in checks):
            # Nothing to overshoot: the call is charged when it ends, in one transaction.
            return BudgetAdmission(self, Held.of(reservation, reserved=False))
        try:
            async with self._writes, self.sessionmaker.begin() as session:
                budgets = BudgetRepository(session)
                refused = await budgets.reserve(checks, reservation)
                if refused is not None:  # raising rolls back what the other counters took
                    shortfall = await self._shortfall(budgets, refused, checks, call, periods)
                    raise _refusal(call, shortfall, now)
        except (SQLAlchemyError, OSError) as error:
            logger.warning("budget of model call {} not reserved: {}", reservation.id, error)
            raise BudgetUnavailable(
                "The budget could not be checked just now; send the request again.",
                retry_after=1,
            ) from error
        return BudgetAdmission(self, Held.of(reservation))

    async def _shortfall(
        self,
        budgets: BudgetRepository,
        refused: CounterKey,
        checks: Sequence[CounterCheck],
        call: ModelCall,
        periods: Periods,
    ) -> BudgetShortfall:
        counter = (await budgets.counters([refused]))[refused]
        limit = next(check.limit for check in checks if check.key == refused)
        return BudgetShortfall(
            subject=refused.subject,
            period=refused.period,
            limit=limit or 0,
            used=counter.used,
            reserved=counter.reserved,
            requested=call.most_tokens,
            resets_at=periods.resets_at(refused.period),
        )

    async def settle(self, held: Held, record: UsageRecord) -> None:
        """Charge what the call used instead of what it held, and write its ledger row; never
        raises. A settlement the database refused is kept and tried again (`retry_unsettled`)
        while this process renews the reservation."""
        try:
            settled = await self.close(held, record)
        except (SQLAlchemyError, OSError) as error:
            logger.warning("model call {} could not be settled yet: {}", held.id, error)
            self._unsettled[held.id] = (held, record)
            return
        if not settled:
            logger.warning(
                "model call {} ended after its reservation ran out: it was charged in full "
                "as interrupted (this process did not renew its reservations in time)",
                held.id,
            )

    async def close(
        self, held: Held, record: UsageRecord, *, expired_before: datetime | None = None
    ) -> bool:
        """One transaction: remove the reservation, release and charge its counters, write the
        ledger row. `False` when the reservation was gone (settled or swept already)."""
        charged = record.prompt_tokens + record.completion_tokens
        if not held.reserved:
            async with self._writes, self.sessionmaker.begin() as session:
                await BudgetRepository(session).charge(held.counters, charged)
                await UsageRepository(session).record(record)
            return True
        async with self._writes, self.sessionmaker.begin() as session:
            released = await BudgetRepository(session).release(
                held.id,
                held.counters,
                held=held.tokens,
                charged=charged,
                expired_before=expired_before,
            )
            if released:
                await UsageRepository(session).record(record)
        return released

    async def retry_unsettled(self) -> None:
        for held, record in list(self._unsettled.values()):
            try:
                await self.close(held, record)
            except (SQLAlchemyError, OSError):
                return  # still unreachable: the next renewal tries again
            del self._unsettled[held.id]

    async def renew(self) -> int:
        """Extend this process's reservations by a lease, in one statement."""
        async with self._writes, self.sessionmaker.begin() as session:
            return await BudgetRepository(session).renew(self.holder, utcnow() + self.lease)

    async def sweep(self) -> int:
        """Charge in full, as interrupted, the reservations whose holder stopped renewing them;
        how many there were. Any process may run it, several at once."""
        now = utcnow()
        async with self.sessionmaker() as session:
            expired = await BudgetRepository(session).expired(now, limit=SWEEP_BATCH)
        swept = 0
        for row in expired:
            held = Held.of(row)
            if await self.close(held, held.interrupted(), expired_before=now):
                swept += 1
        if swept:
            logger.warning("released {} reservation(s) of stopped processes", swept)
        return swept
