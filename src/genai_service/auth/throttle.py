"""Login throttling: attempts counted per account and client address, and per client address.

An attempt is counted *before* its password is verified, in the same step that checks the limit
(`FailureWindow.hit`): argon2 takes about a tenth of a second, so a check before and a count
after would let a burst of simultaneous guesses pass the check together. A successful attempt is
taken back afterwards. The in-process windows below count in one process; with Redis
(`GENAI_REDIS__URL`) every process counts in the same windows (`auth.redis_throttle`).

Which keys, and why (see docs/architecture.md, "Identity"):
- account *and* client address: a guesser is stopped after a few attempts on an account, but the
  account's owner, elsewhere, still logs in: nobody can lock a user out by failing on purpose;
- client address: one address guessing many accounts is stopped too;
- account alone, optional (off by default): bounds guesses spread over many addresses, at the
  price of letting such an attacker lock the account for everyone while they keep going.
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
UNKNOWN_CLIENT = "-"


class FailureWindow(Protocol):
    """At most a fixed number of attempts per key within a sliding window of time."""

    async def hit(self, key: str) -> float:
        """Count an attempt of `key` now if it is under the limit, and answer 0; otherwise count
        nothing and answer the seconds until it may try again. Check and count are one step."""
        ...

    async def forgive(self, key: str) -> None:
        """Take back the newest attempt of `key` (it was not a failure after all)."""
        ...

    async def clear(self, key: str) -> None:
        """Forget every attempt of `key`."""
        ...


class InMemoryFailureWindow:
    """At most `limit` attempts per key within the last `window` seconds (a sliding log).

    The methods never await, so on one event loop each runs as one step.
    """

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
        self._attempts: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float]:
        attempts = self._attempts.get(key)
        if attempts is None:
            return deque()
        while attempts and attempts[0] <= now - self.window:
            attempts.popleft()
        if not attempts:
            del self._attempts[key]
        return attempts

    async def hit(self, key: str) -> float:
        now = self._clock()
        attempts = self._recent(key, now)
        if len(attempts) >= self.limit:
            return attempts[-self.limit] + self.window - now
        attempts.append(now)
        self._attempts[key] = attempts
        self._attempts.move_to_end(key)
        while len(self._attempts) > self._max_keys:
            self._attempts.popitem(last=False)
        return 0.0

    async def forgive(self, key: str) -> None:
        attempts = self._attempts.get(key)
        if attempts:
            attempts.pop()
        if attempts is not None and not attempts:
            del self._attempts[key]

    async def clear(self, key: str) -> None:
        self._attempts.pop(key, None)


class LoginThrottle:
    """Admits a password check (or refuses it with 429 and `Retry-After`) before it runs.

    Unknown accounts are counted like known ones, so the answer tells nothing about an account.
    """

    def __init__(
        self,
        *,
        per_account_and_client: FailureWindow,
        per_client: FailureWindow,
        per_account: FailureWindow | None = None,
    ) -> None:
        self._per_account_and_client = per_account_and_client
        self._per_client = per_client
        self._per_account = per_account

    @classmethod
    def in_memory(cls, settings: AuthSettings) -> LoginThrottle:
        window = float(settings.login_failure_window_seconds)
        account_limit = settings.login_failures_per_account
        return cls(
            per_account_and_client=InMemoryFailureWindow(
                limit=settings.login_failures_per_account_and_client, window=window
            ),
            per_client=InMemoryFailureWindow(
                limit=settings.login_failures_per_client, window=window
            ),
            per_account=(
                InMemoryFailureWindow(limit=account_limit, window=window)
                if account_limit is not None
                else None
            ),
        )

    async def admit(self, account: str, client: str | None) -> None:
        """Count this attempt as a failure until `succeeded` says otherwise; 429 when a window is
        full. Windows are hit from the client outwards and the first full one stops the rest, so
        one address adds at most its own limit to the account-wide window; an attempt refused
        there still counts for its client, which did try."""
        for window, key in self._windows(account, client):
            wait = await window.hit(key)
            if wait > 0:
                raise TooManyRequests(
                    "Too many failed login attempts; try again later.",
                    retry_after=max(1, math.ceil(wait)),
                )

    async def succeeded(self, account: str, client: str | None) -> None:
        """The password was right: this client's failures on the account are forgotten, and the
        attempt itself is taken back from the wider windows (their other failures stay: one good
        login must not reset a client that is guessing other accounts' passwords)."""
        for window, key in self._windows(account, client):
            if window is self._per_account_and_client:
                await window.clear(key)
            else:
                await window.forgive(key)

    def _windows(self, account: str, client: str | None) -> list[tuple[FailureWindow, str]]:
        address = client or UNKNOWN_CLIENT
        windows: list[tuple[FailureWindow, str]] = []
        if client is not None:
            windows.append((self._per_client, f"client:{address}"))
        windows.append((self._per_account_and_client, f"account:{account}|client:{address}"))
        if self._per_account is not None:
            windows.append((self._per_account, f"account:{account}"))
        return windows
