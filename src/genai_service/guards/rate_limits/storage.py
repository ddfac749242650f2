"""Where rate-limit counters live: a protocol of atomic operations, so that a store shared
by several processes (Redis) is a drop-in for the in-process one.

Two kinds of counter:
- a *window* (`requests_per_minute`, `tokens_per_minute`): a bucket of `limit` units that
  refills continuously over `period` seconds (the generic cell rate algorithm, GCRA). Its whole
  state is one number per key, the time at which the bucket is full again; a hit of `cost`
  units moves it `cost * period / limit` seconds later, and fits while it stays within `period`
  of now. Unlike fixed windows, no burst of twice the limit fits across a window's edge;
- a *pool* (`max_concurrent`): the calls in flight, each under the id of its hold, with a lease
  after which a hold whose process died no longer counts.

`acquire` checks every window and pool a call is held to — its user's and its key's, requests,
tokens and slots — and counts the call in all of them or in none: a call refused by its key's
tokens has taken nothing from its owner's requests. `release` gives back the pools' slots and
the tokens a call held but did not use. `renew` extends the leases of the holds a live process
still has, so only a process that stopped loses its slots to their lease. With Redis, each is
one Lua script over the keys it names, timed by the server's `TIME` (windows: a string holding
the full-again time, expiring then; pools: a sorted set of hold ids scored by their lease's
end).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Window:
    """`limit` units per `period` seconds under `key`; a hit takes `cost` of them."""

    key: str
    limit: int
    period: float
    cost: int

    @property
    def emission_interval(self) -> float:
        """The seconds one unit takes to come back."""
        return self.period / self.limit


@dataclass(frozen=True, slots=True)
class Pool:
    """At most `limit` holds at once under `key`."""

    key: str
    limit: int


@dataclass(frozen=True, slots=True)
class WindowState:
    remaining: int
    """Whole units a hit could take now."""
    full_in: float
    """Seconds until the bucket is full again (OpenAI's `x-ratelimit-reset-*`)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    windows: tuple[WindowState, ...]
    """Each window asked about, in order: after this hit when admitted, as it stands if not."""
    refused_by: Window | Pool | None = None
    """The limit that refused: of the windows, the one to wait longest for; else a full pool."""
    retry_after: float = 0.0
    """Seconds until the refusing window has room for the hit (0 for a pool: a slot comes back
    when a call ends, which no counter foretells)."""

    @property
    def admitted(self) -> bool:
        return self.refused_by is None


@dataclass(frozen=True, slots=True)
class Return:
    """Units given back to a window at settlement (negative: taken, for a call that used more
    than it held)."""

    window: Window
    units: int


class RateLimitStorage(Protocol):
    in_memory: bool
    """The counters are in this process's memory: no method waits on anything."""

    async def acquire(
        self,
        hold: str,
        windows: Sequence[Window],
        pools: Sequence[Pool],
        *,
        lease_seconds: float,
    ) -> Verdict:
        """Take each window's cost and a slot of each pool under the id `hold`, all or nothing,
        in one step."""
        ...

    async def release(self, hold: str, pools: Sequence[Pool], returns: Sequence[Return]) -> None:
        """Free the slots of `hold` and give back `returns`: once per admitted hold."""
        ...

    async def renew(
        self, holds: Sequence[tuple[str, Sequence[Pool]]], *, lease_seconds: float
    ) -> None:
        """Extend to `lease_seconds` from now the lease of each hold in its pools; a hold
        already released or expired is not brought back."""
        ...
