"""Limits in force, remembered per caller for a few seconds, so a model call need not read them.

Every guard needs the caller's limits before every model call; read from the database each
time, they cost a session and a query per call (on SQLite, milliseconds: more than the guards'
own counting). Like the checked callers of `auth.caller_cache`:

- A change made through this process applies at once: whatever writes a limits row calls
  `forget_on_commit`, and every change of a user (its role, whose defaults apply; its
  deactivation; a key revoked) reaches `forget` through the cache of checked
  callers, once committed. The next call reads the database again. A read that started before
  such a change is never stored after it (an epoch moves on).
- A change made by another server process (or the CLI) applies at once too when they share
  Redis (`GENAI_REDIS__URL`): a change of limits moves a shared change mark and signals every
  process (`kit.redis_change_mark`), and each call reads the mark before it trusts an entry.
  While Redis is unreachable, or the signals may have been missed, the limits are read from
  the database at every call.
- Without Redis, a change made by another process applies within the time to live. Set it to 0
  to read the limits at every call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from genai_service.gateway.caller import Caller
from genai_service.guards.limits import LimitsInForce, LimitsSource
from genai_service.kit.db import after_commit, await_after_commit
from genai_service.kit.redis_change_mark import SharedChangeMark

if TYPE_CHECKING:
    from genai_service.kit.redis_client import SharedRedis
    from genai_service.kit.redis_signals import RedisSignals

MAX_CALLERS = 10_000
CHANGE_MARK = "limits"


@dataclass(frozen=True, slots=True)
class _Entry:
    limits: LimitsInForce
    expires: float


class CachedLimits:
    def __init__(
        self,
        source: LimitsSource,
        ttl_seconds: float,
        *,
        max_callers: int = MAX_CALLERS,
        clock: Callable[[], float] = time.monotonic,
        redis: SharedRedis | None = None,
        signals: RedisSignals | None = None,
    ) -> None:
        """`redis` and `signals`: shared with the other server processes, which forget what
        this one does (both or neither)."""
        self._source = source
        self._ttl = ttl_seconds
        self._max_callers = max_callers
        self._clock = clock
        self._entries: dict[Caller, _Entry] = {}
        self._reads: dict[Caller, asyncio.Future[LimitsInForce]] = {}
        self._epoch = 0
        self._shared = (
            SharedChangeMark(redis, signals, CHANGE_MARK, on_change=self.forget)
            if redis is not None and signals is not None
            else None
        )

    async def limits_for(self, caller: Caller) -> LimitsInForce:
        if self._ttl <= 0:
            return await self._source.limits_for(caller)
        if self._shared is not None and not await self._shared.unchanged_elsewhere():
            return await self._source.limits_for(caller)
        entry = self._entries.get(caller)
        if entry is not None and entry.expires > self._clock():
            return entry.limits
        reading = self._reads.get(caller)
        if reading is None:
            # One read per caller, however many of its calls missed at once.
            reading = asyncio.ensure_future(self._read(caller))
            self._reads[caller] = reading
            reading.add_done_callback(lambda done: self._read_finished(caller, done))
        # A call that goes away does not cancel the read others may be waiting for.
        return await asyncio.shield(reading)

    async def _read(self, caller: Caller) -> LimitsInForce:
        epoch = self._epoch
        limits = await self._source.limits_for(caller)
        if epoch == self._epoch:
            self._store(caller, limits)
        return limits

    def _read_finished(self, caller: Caller, done: asyncio.Future[LimitsInForce]) -> None:
        if self._reads.get(caller) is done:
            del self._reads[caller]
        if not done.cancelled():
            done.exception()  # retrieved: a failed read is its waiters' to raise

    def forget(self) -> None:
        """Read every caller's limits again from the next call on (reads under way are not
        stored, and later calls start their own)."""
        self._epoch += 1
        self._entries.clear()
        self._reads.clear()

    def forget_on_commit(self, session: AsyncSession) -> None:
        """`forget` once `session` has committed a change of limits, and tell the other
        processes before the change is answered."""
        after_commit(session, self.forget)
        if self._shared is not None:
            await_after_commit(session, self._shared.tell_others)

    def _store(self, caller: Caller, limits: LimitsInForce) -> None:
        now = self._clock()
        self._entries.pop(caller, None)
        if len(self._entries) >= self._max_callers:
            self._entries = {c: e for c, e in self._entries.items() if e.expires > now}
            while len(self._entries) >= self._max_callers:  # still full: the oldest go first
                del self._entries[next(iter(self._entries))]
        self._entries[caller] = _Entry(limits, now + self._ttl)
