"""Rate-limit counters in this process's memory: the embedded default, for one server process.

With several processes each keeps its own tally (a caller gets the limit once per process), so
a deployment of several web workers configures a shared storage instead.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from genai_service.guards.rate_limits.storage import Pool, Return, Verdict, Window, WindowState

EPSILON = 1e-9
"""Float slack: a hit that fills a bucket exactly fits."""
SWEEP_FROM = 10_000
"""Full-again times kept before the ones in the past are swept away."""


def window_state(window: Window, full_at: float, now: float) -> WindowState:
    full_in = max(full_at - now, 0.0)
    units = (window.period - full_in) / window.emission_interval
    return WindowState(remaining=max(0, math.floor(units + EPSILON)), full_in=full_in)


class InMemoryRateLimitStorage:
    """The methods never await, so on one event loop each runs as one step: atomic."""

    in_memory = True

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._full_at: dict[str, float] = {}
        """Per window: when its bucket is full again (absent: full now)."""
        self._holds: dict[str, dict[str, float]] = {}
        """Per pool: the holds in it and the end of their leases."""
        self._sweep_from = SWEEP_FROM

    async def acquire(
        self,
        hold: str,
        windows: Sequence[Window],
        pools: Sequence[Pool],
        *,
        lease_seconds: float,
    ) -> Verdict:
        now = self._clock()
        starts = [max(self._full_at.get(window.key, now), now) for window in windows]
        afters = [
            start + window.cost * window.emission_interval
            for start, window in zip(starts, windows, strict=True)
        ]
        refused_by: Window | Pool | None = None
        retry_after = 0.0
        for window, after in zip(windows, afters, strict=True):
            wait = after - window.period - now
            if wait > EPSILON and wait > retry_after:
                refused_by, retry_after = window, wait
        if refused_by is None:
            refused_by = next(
                (pool for pool in pools if len(self._live(pool.key, now)) >= pool.limit), None
            )
        if refused_by is not None:
            states = [window_state(w, s, now) for w, s in zip(windows, starts, strict=True)]
            return Verdict(tuple(states), refused_by, retry_after)
        for window, after in zip(windows, afters, strict=True):
            self._full_at[window.key] = after
        for pool in pools:
            self._holds.setdefault(pool.key, {})[hold] = now + lease_seconds
        self._sweep(now)
        return Verdict(tuple(window_state(w, a, now) for w, a in zip(windows, afters, strict=True)))

    async def release(self, hold: str, pools: Sequence[Pool], returns: Sequence[Return]) -> None:
        now = self._clock()
        for pool in pools:
            holds = self._holds.get(pool.key)
            if holds is not None:
                holds.pop(hold, None)
                if not holds:
                    del self._holds[pool.key]
        for given in returns:
            key, interval = given.window.key, given.window.emission_interval
            full_at = max(self._full_at.get(key, now), now) - given.units * interval
            if full_at > now:
                self._full_at[key] = full_at
            else:
                self._full_at.pop(key, None)

    async def renew(
        self, holds: Sequence[tuple[str, Sequence[Pool]]], *, lease_seconds: float
    ) -> None:
        now = self._clock()
        for hold, pools in holds:
            for pool in pools:
                live = self._live(pool.key, now)
                if hold in live:
                    live[hold] = now + lease_seconds

    def in_flight(self, key: str) -> int:
        """The live holds of the pool `key`."""
        return len(self._live(key, self._clock()))

    def _live(self, key: str, now: float) -> dict[str, float]:
        holds = self._holds.get(key, {})
        for expired in [hold for hold, ends in holds.items() if ends <= now]:
            del holds[expired]
        return holds

    def _sweep(self, now: float) -> None:
        if len(self._full_at) < self._sweep_from:
            return
        for key in [key for key, full_at in self._full_at.items() if full_at <= now]:
            del self._full_at[key]
        self._sweep_from = max(SWEEP_FROM, 2 * len(self._full_at))
