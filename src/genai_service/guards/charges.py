"""Charges written in batches: the usage of calls that held no reservation of their own (drawn
from an allotment, or of a caller no budget limits), and the tokens allotments give back.

A batch is one transaction, whatever its number of calls: every counter it moves is updated once
(by the sum of its calls), in the order budget transactions lock counters, then every allotment
row shrinks by what its calls used and what it gives back (or is deleted, once given back whole),
then the ledger rows and their daily rollup are written. A batch whose allotment row is gone —
charged in full by another process's sweep, as this process did not renew it in time — is rolled
back and written again without that allotment's calls: they were charged with it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from genai_service.guards.allotments import Allotment
from genai_service.guards.budget_repository import (
    BudgetRepository,
    CounterKey,
    CounterMove,
    counter_keys,
)
from genai_service.guards.usage_repository import LedgerEntry, UsageRepository
from genai_service.models.usage import BudgetPeriod, BudgetSubject


@dataclass(frozen=True, slots=True)
class Charge:
    """A call that ended, charged with the next batch."""

    record: LedgerEntry
    month: date
    held: int = 0
    """What it drew from `allotment`."""
    allotment: Allotment | None = None

    @property
    def tokens(self) -> int:
        return self.record.prompt_tokens + self.record.completion_tokens


class AllotmentGone(Exception):
    """The reservation row of an allotment was charged in full by a sweep."""

    def __init__(self, allotment: Allotment) -> None:
        super().__init__(f"allotment {allotment.row_id} was swept")
        self.allotment = allotment


@dataclass(slots=True)
class ChargeBatch:
    """What one transaction writes, worked out in memory first."""

    charges: list[Charge]
    given_back: dict[Allotment, int]
    """Free tokens each retired allotment gives back (taken off its `free` until written)."""
    moves: dict[CounterKey, CounterMove] = field(default_factory=dict)
    shrinks: dict[Allotment, int] = field(default_factory=dict)
    closing: set[Allotment] = field(default_factory=set)
    """The retired allotments this batch gives back whole: their calls all ended and are in
    it (their rows are deleted)."""
    owners: dict[CounterKey, uuid.UUID] = field(default_factory=dict)

    @classmethod
    def of(cls, charges: list[Charge], given_back: dict[Allotment, int]) -> ChargeBatch:
        batch = cls(charges, given_back)
        moves: dict[CounterKey, list[int]] = defaultdict(lambda: [0, 0])
        by_counters: dict[tuple[uuid.UUID, uuid.UUID | None, date, date], list[int]] = defaultdict(
            lambda: [0, 0]
        )
        for charge in charges:
            from_allotment = min(charge.tokens, charge.held)
            record = charge.record
            sums = by_counters[(record.user_id, record.api_key_id, record.day, charge.month)]
            sums[0] += charge.tokens
            sums[1] -= from_allotment
            if charge.allotment is not None:
                batch.shrinks[charge.allotment] = (
                    batch.shrinks.get(charge.allotment, 0) + from_allotment
                )
        for (user_id, api_key_id, day, month), (used, reserved) in by_counters.items():
            for key in counter_keys(user_id, api_key_id, day, month):
                moves[key][0] += used
                moves[key][1] += reserved
                batch.owners[key] = user_id
        for allotment, tokens in given_back.items():
            for key in allotment.key.counters:
                moves[key][1] -= tokens
                batch.owners[key] = allotment.key.user_id
            batch.shrinks[allotment] = batch.shrinks.get(allotment, 0) + tokens
        batch.moves = {
            key: CounterMove(key, used, reserved) for key, (used, reserved) in moves.items()
        }
        batch.closing = {
            allotment
            for allotment in given_back
            if allotment.calls_in_flight == 0 and allotment.size == batch.shrinks[allotment]
        }
        return batch

    def without(self, gone: Allotment) -> ChargeBatch:
        """This batch less the calls and the giving back of an allotment already charged."""
        return ChargeBatch.of(
            [charge for charge in self.charges if charge.allotment is not gone],
            {a: tokens for a, tokens in self.given_back.items() if a is not gone},
        )

    def _lock_order(self, key: CounterKey) -> tuple[str, int, str, int]:
        """A caller's counters in the order every budget transaction takes them: the user's
        day and month, then its key's."""
        return (
            str(self.owners[key]),
            0 if key.subject is BudgetSubject.USER else 1,
            str(key.subject_id),
            0 if key.period is BudgetPeriod.DAY else 1,
        )

    async def write(self, session: AsyncSession) -> None:
        """Write the batch in `session`'s transaction; raises `AllotmentGone` (the transaction
        must then be rolled back)."""
        budgets = BudgetRepository(session)
        moves: Sequence[CounterMove] = sorted(
            self.moves.values(), key=lambda move: self._lock_order(move.key)
        )
        await budgets.move(moves)
        for allotment, tokens in self.shrinks.items():
            if allotment in self.closing:
                found = await budgets.drop(allotment.row_id)
            elif tokens:
                found = await budgets.shrink(allotment.row_id, tokens)
            else:
                continue
            if not found:
                raise AllotmentGone(allotment)
        await UsageRepository(session).record_many([charge.record for charge in self.charges])
