"""Login throttling: failed attempts per account and per client address in a sliding window.

`FailureWindow` is the small interface a shared (Redis) implementation will plug into; the
in-process one below counts per process, so with several workers each keeps its own tally.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Protocol

from genai_service.kit.errors import TooManyRequests
from genai_service.settings import AuthSettings

MAX_TRACKED_KEYS = 100_000


class FailureWindow(Protocol):
    async def retry_after(self, key: str) -> float:
        """Seconds until `key` may try again; 0 when it is not blocked."""
        ...

    async def add_failure(self, key: str) -> None: ...

    async def clear(self, key: str) -> None: ...


class InMemoryFailureWindow:
    """At most `limit` failures per key within the last `window` seconds (a sliding log)."""

    def __init__(
        self,
        *,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_TRACKED_KEYS,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    async def retry_after(self, key: str) -> float:
        now = self._clock()
        failures = self._recent(key, now)
        if len(failures) < self.limit:
            return 0.0
        return failures[-self.limit] + self.window - now

    async def add_failure(self, key: str) -> None:
        now = self._clock()
        failures = self._recent(key, now)
        failures.append(now)
        self._failures[key] = failures
        self._failures.move_to_end(key)
        while len(self._failures) > self._max_keys:
            self._failures.popitem(last=False)

    async def clear(self, key: str) -> None:
        self._failures.pop(key, None)


class LoginThrottle:
    """Refuses login attempts (429 with `Retry-After`) for an account or a client address that
    failed too often recently. Unknown accounts are counted too, so the answer tells nothing."""

    def __init__(self, *, per_account: FailureWindow, per_client: FailureWindow) -> None:
        self._per_account = per_account
        self._per_client = per_client

    @classmethod
    def in_memory(cls, settings: AuthSettings) -> LoginThrottle:
        window = float(settings.login_failure_window_seconds)
        return cls(
            per_account=InMemoryFailureWindow(
                limit=settings.login_failures_per_account, window=window
            ),
            per_client=InMemoryFailureWindow(
                limit=settings.login_failures_per_client, window=window
            ),
        )

    async def check(self, account: str, client: str | None) -> None:
        wait = await self._per_account.retry_after(account)
        if client is not None:
            wait = max(wait, await self._per_client.retry_after(client))
        if wait > 0:
            raise TooManyRequests(
                "Too many failed login attempts; try again later.", retry_after=math.ceil(wait)
            )

    async def record_failure(self, account: str, client: str | None) -> None:
        await self._per_account.add_failure(account)
        if client is not None:
            await self._per_client.add_failure(client)

    async def record_success(self, account: str) -> None:
        """Forget the account's failures (not the client's: one good login must not reset a
        client that is guessing other accounts' passwords)."""
        await self._per_account.clear(account)
