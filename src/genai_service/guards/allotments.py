"""Allotments: budget a process reserves ahead of its calls, so that a caller far from its limit
costs no database write per call.

A call reserved on its own takes a transaction before it starts and another when it ends. A
caller whose budget is large next to its calls is instead served from an *allotment*: one
reservation of many calls' worth of tokens (`LimitsSettings.budget_allotment_tokens`), taken
with the same conditional UPDATE as any reservation, held under this process's lease, and
drawn from in memory. Nothing can overshoot: the allotment was reserved within the limit before
any call drew on it. The calls' usage and ledger rows are written in batches
(`BudgetGuard.flush`), which move what they used from the allotment to the counters.

An allotment is *retired* — drawn from no more, given back once its calls ended — when a call
does not fit in what is left of it (a fresh one is reserved), when the caller's limits change,
at the turn of the day or month, and when no call drew on it for a while; so a process holds
tokens ahead only while its callers use them. If the process is killed, its allotments expire
with their lease and are charged in full, as interrupted: what its last calls used is not lost,
at the cost of charging what they did not use.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date

from genai_service.guards.budget_repository import CounterCheck, CounterKey, counter_keys

SMALLEST_SHARE = 32
"""An allotment is at most this fraction of the tightest limit it is held to: however many
processes hold one, what they hold ahead stays a small part of the budget."""
CALLS_PER_ALLOTMENT = 8
"""An allotment must hold at least this many calls like the one asking, or calls are reserved
one by one (a budget near its size, where every token counts)."""


@dataclass(frozen=True, slots=True)
class AllotmentKey:
    """Whose counters an allotment holds tokens on, and in which periods."""

    user_id: uuid.UUID
    api_key_id: uuid.UUID | None
    day: date
    month: date

    @property
    def counters(self) -> list[CounterKey]:
        return counter_keys(self.user_id, self.api_key_id, self.day, self.month)


@dataclass(eq=False, slots=True)
class Allotment:
    """One allotment as this process keeps it. `size` is what its reservation row holds:
    `free` + what calls in flight hold + what ended calls used and is not yet written."""

    key: AllotmentKey
    row_id: uuid.UUID
    limits: tuple[int | None, ...]
    """The limits it was reserved under: others in force retire it."""
    size: int
    free: int
    calls_in_flight: int = 0
    retired: bool = False
    last_used: float = field(default_factory=time.monotonic)

    def draw(self, tokens: int) -> bool:
        if self.retired or tokens > self.free:
            return False
        self.free -= tokens
        self.calls_in_flight += 1
        self.last_used = time.monotonic()
        return True

    def end_call(self, held: int, charged: int) -> None:
        """A call that drew `held` ended having used `charged`: what it did not use is free
        again (what it used beyond `held` is charged on top, `overrun`)."""
        self.free += held - min(held, charged)
        self.calls_in_flight -= 1
        self.last_used = time.monotonic()


def allotment_size(checks: list[CounterCheck], tokens: int, most: int) -> int:
    """The tokens to reserve ahead for a call of `tokens` held to `checks`, or 0 when its calls
    are better reserved one by one."""
    limits = [check.limit for check in checks if check.limit is not None]
    size = min([most, *(limit // SMALLEST_SHARE for limit in limits)])
    return size if size >= CALLS_PER_ALLOTMENT * tokens else 0


class Allotments:
    """This process's allotments, one open per caller and periods, plus the retired ones whose
    calls have not all ended or been written yet."""

    def __init__(self, idle_seconds: float) -> None:
        self.idle_seconds = idle_seconds
        self._open: dict[AllotmentKey, Allotment] = {}
        self._held: dict[uuid.UUID, Allotment] = {}
        """Every allotment whose reservation row exists, by the row's id."""
        self._refused: dict[AllotmentKey, float] = {}

    def draw(
        self, key: AllotmentKey, limits: tuple[int | None, ...], tokens: int
    ) -> Allotment | None:
        """The open allotment `tokens` were drawn from, or `None` (then the call needs a new
        one, or its own reservation)."""
        allotment = self._open.get(key)
        if allotment is None:
            return None
        if allotment.limits != limits:
            self.retire(allotment)
            return None
        if allotment.draw(tokens):
            return allotment
        self.retire(allotment)  # too little left for calls like this: a fresh one is reserved
        return None

    def add(self, allotment: Allotment) -> None:
        opened = self._open.get(allotment.key)
        if opened is not None:
            self.retire(opened)
        self._open[allotment.key] = allotment
        self._held[allotment.row_id] = allotment

    def retire(self, allotment: Allotment) -> None:
        allotment.retired = True
        if self._open.get(allotment.key) is allotment:
            del self._open[allotment.key]

    def retire_of(self, user_id: uuid.UUID) -> bool:
        """Retire every allotment on this user's counters (its own and its keys'), so what
        they hold free can be given back; whether any holds tokens free."""
        found = [a for a in self._held.values() if a.key.user_id == user_id]
        for allotment in found:
            self.retire(allotment)
        return any(allotment.free for allotment in found)

    def refused(self, key: AllotmentKey) -> None:
        """No allotment fitted the caller's budget: its calls are reserved one by one for a
        while rather than each trying for one first."""
        self._refused[key] = time.monotonic() + self.idle_seconds

    def may_open(self, key: AllotmentKey) -> bool:
        until = self._refused.get(key)
        if until is None:
            return True
        if until > time.monotonic():
            return False
        del self._refused[key]
        return True

    def retire_idle(self, today: date) -> None:
        """Retire the allotments of past periods and those no call used for a while (and
        forget refusals that have run out)."""
        now = time.monotonic()
        self._refused = {key: until for key, until in self._refused.items() if until > now}
        idle_since = now - self.idle_seconds
        for allotment in list(self._open.values()):
            idle = allotment.calls_in_flight == 0 and allotment.last_used < idle_since
            if allotment.key.day != today or idle:
                self.retire(allotment)

    def retire_all(self) -> None:
        for allotment in list(self._open.values()):
            self.retire(allotment)

    def forget(self, allotment: Allotment) -> None:
        """Its reservation row is gone (given back whole, or charged by a sweep)."""
        self.retire(allotment)
        self._held.pop(allotment.row_id, None)

    def __iter__(self) -> Iterator[Allotment]:
        return iter(list(self._held.values()))
