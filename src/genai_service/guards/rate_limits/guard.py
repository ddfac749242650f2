"""The rate-limit guard: requests and tokens per minute and calls in flight, held for a call's
user and, when its API key has limits of its own, for the key as well.

A call is counted before it runs, in one step with the check (`RateLimitStorage.acquire`), so
a burst of simultaneous calls cannot slip through together. Tokens per minute count what a call
may use at most (its prompt and `max_tokens`) while it runs; when it ends, the tokens it did not
use are given back, so the limit measures use rather than the reservations clients ask for,
and still cannot be overshot by calls in flight. Its slot of `max_concurrent` is freed when it
ends, whichever way (the gateway settles every admitted call in a `finally`); while it runs,
its process renews the slot's lease (`slot_leases`), so a slot outlives its process by at most
a lease.

Generated titles and document ingestion are not limited here: a title follows a turn that was
admitted, and ingestion is paced by its own runner; both still count against token budgets.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from loguru import logger

from genai_service.gateway.caller import Purpose
from genai_service.gateway.guards import Admission, CallOutcome, ModelCall
from genai_service.guards.limits import LimitsInForce, LimitsSource
from genai_service.guards.rate_limits.errors import (
    RateLimited,
    RateLimitsUnavailable,
    TokenRateLimited,
)
from genai_service.guards.rate_limits.headers import duration, retry_headers, window_headers
from genai_service.guards.rate_limits.storage import (
    Pool,
    RateLimitStorage,
    Return,
    Verdict,
    Window,
)
from genai_service.kit.random_ids import random_hex
from genai_service.settings import Limits

PERIOD_SECONDS = 60.0
SLOT_LEASE_SECONDS = 60.0
"""How long a slot of `max_concurrent` is held unless renewed: in a shared store, the slot of a
call whose process died comes back after this long."""
CONCURRENCY_RETRY_SECONDS = 1.0
"""The `Retry-After` of a refusal for calls in flight: a slot comes back when a call ends."""
UNLIMITED_PURPOSES: frozenset[Purpose] = frozenset({"title", "ingestion"})

Scope = Literal["user", "key"]
Kind = Literal["requests", "tokens"]
_WHO: dict[Scope, str] = {"user": "Your account", "key": "This API key"}


@dataclass(frozen=True, slots=True)
class _Counted:
    """A window and what it stands for."""

    window: Window
    scope: Scope
    kind: Kind

    @property
    def limit_name(self) -> str:
        return f"{self.kind}_per_minute"


@dataclass(frozen=True, slots=True)
class _Slots:
    pool: Pool
    scope: Scope


@dataclass(frozen=True, slots=True)
class CallHolds:
    """What one call takes under the limits in force for it."""

    windows: tuple[_Counted, ...]
    pools: tuple[_Slots, ...]

    @classmethod
    def of(cls, call: ModelCall, in_force: LimitsInForce) -> CallHolds:
        windows: list[_Counted] = []
        pools: list[_Slots] = []
        holders: list[tuple[Scope, uuid.UUID | None, Limits | None]] = [
            ("user", call.caller.user_id, in_force.user),
            ("key", call.caller.api_key_id, in_force.key),
        ]
        for scope, owner, limits in holders:
            if owner is None or limits is None:
                continue
            prefix = f"{scope}:{owner}"
            if limits.requests_per_minute is not None:
                window = Window(f"{prefix}:requests", limits.requests_per_minute, PERIOD_SECONDS, 1)
                windows.append(_Counted(window, scope, "requests"))
            if limits.tokens_per_minute is not None:
                window = Window(
                    f"{prefix}:tokens", limits.tokens_per_minute, PERIOD_SECONDS, call.most_tokens
                )
                windows.append(_Counted(window, scope, "tokens"))
            if limits.max_concurrent is not None:
                pools.append(_Slots(Pool(f"{prefix}:in-flight", limits.max_concurrent), scope))
        return cls(tuple(windows), tuple(pools))

    @property
    def empty(self) -> bool:
        return not self.windows and not self.pools

    def headers(self, verdict: Verdict) -> dict[str, str]:
        """For each kind, the window with the fewest units left: the one that binds."""
        headers: dict[str, str] = {}
        for kind in ("requests", "tokens"):
            states = [
                (state, counted)
                for state, counted in zip(verdict.windows, self.windows, strict=True)
                if counted.kind == kind
            ]
            if states:
                state, counted = min(states, key=lambda pair: pair[0].remaining)
                headers |= window_headers(kind, counted.window, state)
        return headers

    def never_fitting(self) -> _Counted | None:
        """A window the call cannot fit in however long it waits."""
        return next(
            (c for c in self.windows if c.window.limit == 0 or c.window.cost > c.window.limit),
            None,
        )


@dataclass(slots=True)
class RateLimitAdmission:
    guard: RateLimitGuard
    hold: str
    holds: CallHolds
    most_tokens: int
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def settles_in_memory(self) -> bool:
        return self.guard.storage.in_memory

    async def settle(self, outcome: CallOutcome) -> None:
        unused = self.most_tokens - outcome.total_tokens
        returns = [
            Return(counted.window, unused)
            for counted in self.holds.windows
            if counted.kind == "tokens" and unused
        ]
        await self.guard.release(self.hold, self.holds, returns)


class _Unheld:
    """The admission of a call no rate limit holds."""

    headers: Mapping[str, str] = {}
    settles_in_memory = True

    async def settle(self, outcome: CallOutcome) -> None:
        return None


UNHELD = _Unheld()


class RateLimitGuard:
    def __init__(
        self,
        limits: LimitsSource,
        storage: RateLimitStorage,
        *,
        lease_seconds: float = SLOT_LEASE_SECONDS,
    ) -> None:
        """`lease_seconds`: how long a slot is held unless `renew` extends it."""
        self.limits = limits
        self.storage = storage
        self.lease_seconds = lease_seconds
        self._held: dict[str, tuple[Pool, ...]] = {}
        """The holds of this process's calls in flight that take slots, and their pools."""

    async def admit(self, call: ModelCall) -> Admission:
        if call.purpose in UNLIMITED_PURPOSES:
            return UNHELD
        holds = CallHolds.of(call, await self.limits.limits_for(call.caller))
        if holds.empty:
            return UNHELD
        impossible = holds.never_fitting()
        if impossible is not None:
            raise _never_fits(impossible)
        hold = random_hex()
        verdict = await self.storage.acquire(
            hold,
            [counted.window for counted in holds.windows],
            [slots.pool for slots in holds.pools],
            lease_seconds=self.lease_seconds,
        )
        headers = holds.headers(verdict)
        if not verdict.admitted:
            raise _refusal(holds, verdict, headers)
        if holds.pools:
            self._held[hold] = tuple(slots.pool for slots in holds.pools)
        return RateLimitAdmission(self, hold, holds, call.most_tokens, headers)

    async def release(self, hold: str, holds: CallHolds, returns: Sequence[Return]) -> None:
        self._held.pop(hold, None)
        pools = [slots.pool for slots in holds.pools]
        if not pools and not returns:
            return
        try:
            await self.storage.release(hold, pools, returns)
        except RateLimitsUnavailable:
            logger.warning(
                "rate limits: a call's slots come back when their lease ends, and its unused "
                "tokens with the window (the shared counters did not answer)"
            )

    async def renew(self) -> None:
        """Extend the leases of this process's calls in flight."""
        if self._held:
            await self.storage.renew(list(self._held.items()), lease_seconds=self.lease_seconds)


def _refusal(holds: CallHolds, verdict: Verdict, headers: dict[str, str]) -> RateLimited:
    refused = verdict.refused_by
    for slots in holds.pools:
        if slots.pool is refused:
            limit = slots.pool.limit
            return RateLimited(
                f"{_WHO[slots.scope]} may have {limit} model calls in flight at once "
                "(max_concurrent); try again when one has ended.",
                headers=headers | retry_headers(CONCURRENCY_RETRY_SECONDS),
                extra={"limit": "max_concurrent", "scope": slots.scope, "allowed": limit},
            )
    counted = next(c for c in holds.windows if c.window is refused)
    window, wait = counted.window, verdict.retry_after
    extra = {"limit": counted.limit_name, "scope": counted.scope, "allowed": window.limit}
    if counted.kind == "requests":
        return RateLimited(
            f"{_WHO[counted.scope]} may make {window.limit} model calls per minute "
            f"(requests_per_minute); try again in {duration(wait)}.",
            headers=headers | retry_headers(wait),
            extra=extra,
        )
    return TokenRateLimited(
        f"{_WHO[counted.scope]} may use {window.limit} tokens per minute (tokens_per_minute) "
        f"and this call holds up to {window.cost} (its prompt and max_tokens); try again in "
        f"{duration(wait)}, or ask for fewer tokens.",
        headers=headers | retry_headers(wait),
        extra=extra,
    )


def _never_fits(counted: _Counted) -> RateLimited:
    """Waiting would not help: no `Retry-After`, and OpenAI's SDKs are told not to retry."""
    window, who = counted.window, _WHO[counted.scope]
    extra = {"limit": counted.limit_name, "scope": counted.scope, "allowed": window.limit}
    headers = {"x-should-retry": "false"}
    if counted.kind == "requests":
        return RateLimited(
            f"{who} may make no model calls (requests_per_minute is 0).",
            headers=headers,
            extra=extra,
        )
    return TokenRateLimited(
        f"This call holds up to {window.cost} tokens (its prompt and max_tokens), more than the "
        f"{window.limit} tokens per minute {who[0].lower()}{who[1:]} may use "
        "(tokens_per_minute): ask for fewer tokens or send a shorter prompt.",
        headers=headers,
        extra=extra,
    )
