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

A caller far from its limits is served from an allotment instead (`allotments`), and a caller
no budget limits reserves nothing: their calls are charged in batches (`charges`), a
transaction for many calls, written every `ledger_flush_seconds` and before usage is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from loguru import logger
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from genai_service.gateway.guards import CallOutcome, ModelCall
from genai_service.guards.allotments import Allotment, AllotmentKey, Allotments, allotment_size
from genai_service.guards.budget_repository import BudgetRepository, CounterCheck, CounterKey
from genai_service.guards.charges import AllotmentGone, Charge, ChargeBatch
from genai_service.guards.errors import BudgetExceeded, BudgetShortfall, BudgetUnavailable
from genai_service.guards.held import Held, counter_checks
from genai_service.guards.limits import LimitsSource
from genai_service.guards.periods import Periods
from genai_service.guards.usage_repository import LedgerEntry, UsageRepository
from genai_service.kit.db import utcnow
from genai_service.kit.random_ids import random_uuid
from genai_service.models.usage import UsageStatus
from genai_service.settings import LimitsSettings

BATCH_CALLS = 500
"""Ended calls that are written at once rather than at the next tick."""
SWEEP_BATCH = 100
"""Expired reservations released per sweep query."""
ALLOTMENT_MODEL = "*"
"""The model an allotment's reservation names: its calls may use any."""
ALLOTMENT_PURPOSE = "allotment"
MOST_UNWRITTEN = 10_000
"""Ended calls waiting to be charged past which new calls are refused (503) rather than served:
the database has been unreachable for that long."""


def new_holder_id() -> str:
    """This process, as reservations name their holder: unique per start of a process."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


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


class _NoRoom(Exception):
    """An allotment does not fit in the caller's budget."""


def _unavailable(held: Held, error: Exception) -> BudgetUnavailable:
    logger.warning("budget of model call {} not reserved: {}", held.id, error)
    return BudgetUnavailable(
        "The budget could not be checked just now; send the request again.", retry_after=1
    )


@dataclass(slots=True)
class BudgetAdmission:
    guard: BudgetGuard
    held: Held
    allotment: Allotment | None = None
    """Where the call drew `held.tokens` from, when it holds no reservation of its own."""
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def settles_in_memory(self) -> bool:
        """A reservation of its own is settled in the database; anything else with a batch."""
        return not self.held.reserved

    async def settle(self, outcome: CallOutcome) -> None:
        record = self.held.record(
            UsageStatus(outcome.status),
            outcome.prompt_tokens,
            outcome.completion_tokens,
            outcome.duration_ms,
        )
        if self.held.reserved:
            await self.guard.settle(self.held, record)
        else:
            self.guard.charge_later(self.held, record, self.allotment)


class BudgetGuard:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        limits: LimitsSource,
        settings: LimitsSettings,
        *,
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
        self.lease = timedelta(seconds=settings.reservation_lease_seconds)
        self.flush_seconds = settings.ledger_flush_seconds
        self.allotment_tokens = settings.budget_allotment_tokens
        self.holder = holder or new_holder_id()
        self.allotments = Allotments(idle_seconds=max(1.0, 5 * self.flush_seconds))
        self._opening = asyncio.Lock()
        self._charges: list[Charge] = []
        self._unlimited_unwritten: Counter[uuid.UUID] = Counter()
        """Per user, the unwritten calls that nothing held tokens for (no limit applied)."""
        self._flushing = asyncio.Lock()
        self.batch_full = asyncio.Event()
        """Set when enough calls wait to be charged to write them before the next tick."""
        self._unsettled: dict[uuid.UUID, tuple[Held, LedgerEntry]] = {}
        """Settlements that failed (the database was unreachable), tried again by the leases."""

    async def admit(self, call: ModelCall) -> BudgetAdmission:
        """Hold `call.most_tokens` on every counter of the caller — from an allotment, or with
        a reservation of its own — or raise `BudgetExceeded` for the first limited counter it
        does not fit in (holding nothing). A caller no budget limits holds nothing: its call is
        only charged when it ends (so the in-flight calls of a process that is killed are not
        in its ledger)."""
        in_force = await self.limits.limits_for(call.caller)
        now = utcnow()
        periods = Periods.at(now)
        checks = counter_checks(call.caller, in_force, periods)
        held = Held(
            id=random_uuid(),
            user_id=call.caller.user_id,
            api_key_id=call.caller.api_key_id,
            day=periods.day,
            month=periods.month,
            tokens=call.most_tokens,
            prompt_tokens=call.prompt_tokens,
            model=call.model,
            purpose=call.purpose,
            started_at=now,
        )
        if len(self._charges) >= MOST_UNWRITTEN:
            raise BudgetUnavailable(
                "Usage could not be written for a while; send the request again later.",
                retry_after=5,
            )
        if all(check.limit is None for check in checks):
            # Nothing to overshoot: the call is charged when it ends, with a batch.
            return BudgetAdmission(self, held)
        if self._unlimited_unwritten[held.user_id]:
            # Calls made before a limit applied count against it: they are written first.
            await self._flush_for(held)
        size = allotment_size(checks, held.tokens, self.allotment_tokens)
        if size:
            allotment = await self._draw(held, checks, size)
            if allotment is not None:
                return BudgetAdmission(self, held, allotment)
        try:
            return BudgetAdmission(self, await self._reserve(call, checks, held, periods))
        except BudgetExceeded:
            if not self.allotments.retire_of(held.user_id):
                raise
        # What this process held ahead for the user may be what the call lacks: give it back.
        await self._flush_for(held)
        return BudgetAdmission(self, await self._reserve(call, checks, held, periods))

    async def _flush_for(self, held: Held) -> None:
        try:
            await self.flush()
        except (SQLAlchemyError, OSError) as error:
            raise _unavailable(held, error) from error

    async def _reserve(
        self, call: ModelCall, checks: list[CounterCheck], held: Held, periods: Periods
    ) -> Held:
        reservation = held.reservation(self.holder, held.started_at + self.lease)
        try:
            async with self._writes, self.sessionmaker.begin() as session:
                budgets = BudgetRepository(session)
                refused = await budgets.reserve(checks, reservation)
                if refused is not None:  # raising rolls back what the other counters took
                    shortfall = await self._shortfall(budgets, refused, checks, call, periods)
                    raise _refusal(call, shortfall, held.started_at)
        except (SQLAlchemyError, OSError) as error:
            raise _unavailable(held, error) from error
        return replace(held, reserved=True)

    async def _draw(self, held: Held, checks: list[CounterCheck], size: int) -> Allotment | None:
        """Draw the call's tokens from the caller's allotment, reserving a fresh one of `size`
        tokens if it has none or too little left; `None` when no allotment of that size fits
        (the call is then reserved on its own)."""
        key = AllotmentKey(held.user_id, held.api_key_id, held.day, held.month)
        limits = tuple(check.limit for check in checks)
        drawn = self.allotments.draw(key, limits, held.tokens)
        if drawn is not None or not self.allotments.may_open(key):
            return drawn
        async with self._opening:  # one reservation for calls that all found theirs short
            drawn = self.allotments.draw(key, limits, held.tokens)
            if drawn is not None:
                return drawn
            row = replace(
                held,
                id=random_uuid(),
                tokens=size,
                prompt_tokens=0,
                model=ALLOTMENT_MODEL,
                purpose=ALLOTMENT_PURPOSE,
            ).reservation(self.holder, held.started_at + self.lease)
            try:
                async with self._writes, self.sessionmaker.begin() as session:
                    refused = await BudgetRepository(session).reserve(checks, row)
                    if refused is not None:
                        raise _NoRoom  # rolls back what the other counters took
            except _NoRoom:
                self.allotments.refused(key)
                return None
            except (SQLAlchemyError, OSError) as error:
                logger.warning("no allotment reserved for model call {}: {}", held.id, error)
                return None  # the call's own reservation says whether the database is there
            allotment = Allotment(key, row.id, limits, size=size, free=size)
            self.allotments.add(allotment)
            return allotment if allotment.draw(held.tokens) else None

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

    async def settle(self, held: Held, record: LedgerEntry) -> None:
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
        self, held: Held, record: LedgerEntry, *, expired_before: datetime | None = None
    ) -> bool:
        """One transaction: remove the reservation, release and charge its counters, write the
        ledger row. `False` when the reservation was gone (settled or swept already)."""
        charged = record.prompt_tokens + record.completion_tokens
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

    def charge_later(self, held: Held, record: LedgerEntry, allotment: Allotment | None) -> None:
        """Charge a call that held no reservation of its own with the next batch."""
        charge = Charge(record, held.month, held.tokens if allotment else 0, allotment)
        if allotment is not None:
            allotment.end_call(charge.held, charge.tokens)
        else:
            self._unlimited_unwritten[held.user_id] += 1
        self._charges.append(charge)
        if len(self._charges) >= BATCH_CALLS:
            self.batch_full.set()

    async def flush(self, *, closing: bool = False) -> None:
        """Write the calls that ended and give back what retired allotments hold free, in one
        transaction; `closing`: retire every allotment first (the process stops). Raises the
        database's error, keeping everything to be written again."""
        async with self._flushing:
            self.batch_full.clear()
            if closing:
                self.allotments.retire_all()
            else:
                self.allotments.retire_idle(utcnow().date())
            charges, self._charges = self._charges, []
            # A retired allotment whose calls still run and hold all it has gives nothing yet.
            given_back = {
                a: a.free
                for a in self.allotments
                if a.retired and (a.free or not a.calls_in_flight)
            }
            for allotment in given_back:
                allotment.free = 0
            batch = ChargeBatch.of(charges, given_back)
            try:
                batch = await self._write(batch)
            except BaseException:
                self._charges[:0] = charges
                for allotment, tokens in given_back.items():
                    allotment.free += tokens
                raise
            self._unlimited_unwritten -= Counter(
                charge.record.user_id for charge in charges if charge.allotment is None
            )
            for allotment, tokens in batch.shrinks.items():
                if allotment in batch.closing:
                    self.allotments.forget(allotment)
                allotment.size -= tokens

    async def _write(self, batch: ChargeBatch) -> ChargeBatch:
        """Write `batch`, less the allotments a sweep charged already; what was written."""
        while batch.charges or batch.shrinks:
            try:
                async with self._writes, self.sessionmaker.begin() as session:
                    await batch.write(session)
                return batch
            except AllotmentGone as gone:
                logger.warning(
                    "allotment {} ran out before its calls were written: it was charged in "
                    "full as interrupted (this process did not renew its reservations in time)",
                    gone.allotment.row_id,
                )
                self.allotments.forget(gone.allotment)
                batch = batch.without(gone.allotment)
        return batch

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
