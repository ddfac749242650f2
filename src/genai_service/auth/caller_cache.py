"""Callers checked a moment ago, so routes that run a model skip the database on most requests.

A small `/v1/embeddings` request costs the event loop about as much as checking its credential
in the database (a session, a read, a commit), and on a busy host that time is taken from the
model. The cache keeps the user a credential stood for, for a few seconds:

- Changes made through this process apply at once. Deactivating or changing a user, changing
  a password, signing a session out, a reused refresh token and revoking an API key call
  `forget_user` once their transaction has committed, and the next request checks the
  database again.
- A check that read the database before such a change is never stored after it. Every
  `forget_user` moves an epoch on, and a check stores its result only if the epoch is the one
  it started with.
- Changes made by another server process apply at once too when the processes share Redis
  (`GENAI_REDIS__URL`). Before the response that made a change is sent, a shared change mark
  in Redis is set to a new random value (and `forget_user` is signalled to every process).
  Every request read from the cache first reads that mark, one Redis round trip instead of a
  database check: when it moved, the whole cache is dropped. The signal alone could arrive
  after the next request; the mark cannot. While Redis is unreachable (or the signals may have
  been missed, until listening resumes) the cache is not trusted: every request is checked in
  the database.
- Without Redis, changes made by another process (another web worker, the CLI) apply within the
  time to live. Set it to 0 to check every request.
- What else the process remembers of its callers (the limits in force, which follow a user's
  role) is told through `on_forget`, so one call site covers every change.

An entry never outlives the credential itself (an access token's or an API key's expiry).
Concurrent requests with the same unchecked credential share one database check. Invalid
credentials are not cached: each is refused by the database again.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from loguru import logger
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from genai_service.auth.principal import Principal
from genai_service.kit.db import after_commit, await_after_commit, utcnow
from genai_service.kit.errors import ServiceUnavailable
from genai_service.kit.redis_client import redis_required

if TYPE_CHECKING:
    from genai_service.kit.redis_client import SharedRedis
    from genai_service.kit.redis_signals import RedisSignals

Check = Callable[[], Awaitable[Principal]]
Clock = Callable[[], float]
FORGET_CHANNEL = "caller-cache-forget"
CHANGE_MARK = "caller-cache-changed"


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    expires: float
    """On the cache's monotonic clock."""


class CallerCache:
    def __init__(
        self,
        ttl_seconds: float,
        *,
        max_entries: int = 10_000,
        clock: Clock = time.monotonic,
        signals: RedisSignals | None = None,
        redis: SharedRedis | None = None,
        on_forget: Callable[[], None] | None = None,
    ) -> None:
        """`signals` and `redis`: shared with the other server processes, which forget what
        this one does (both or neither)."""
        self._ttl = ttl_seconds
        self._on_forget = on_forget
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._checks: dict[str, asyncio.Task[Principal]] = {}
        self._epoch = 0
        self._signals = signals
        self._redis = redis
        self._mark_seen: str | None = None
        """The shared change mark the entries were stored under."""
        if signals is not None:
            signals.listen(FORGET_CHANNEL, self._forget_signalled)
            signals.on_gap(self.forget_everyone)

    def __len__(self) -> int:
        return len(self._entries)

    async def principal_for(self, credential: str, check: Check) -> Principal:
        """Who `credential` stands for: from the cache, or from `check` (which raises if the
        credential is refused). `credential` is any string naming the caller."""
        if self._ttl <= 0 or (self._signals is not None and not self._signals.connected):
            return await check()
        if not await self._unchanged_elsewhere():
            return await check()
        key = hashlib.sha256(credential.encode()).hexdigest()
        entry = self._entries.get(key)
        if entry is not None:
            if entry.expires > self._clock():
                return entry.principal
            del self._entries[key]
        task = self._checks.get(key)
        if task is None:
            task = asyncio.ensure_future(self._check_and_store(key, check))
            self._checks[key] = task
            task.add_done_callback(lambda done: self._check_finished(key, done))
        # A caller that goes away does not cancel the check others may be waiting for.
        return await asyncio.shield(task)

    def forget_user_on_commit(self, session: AsyncSession, user_id: uuid.UUID) -> None:
        """`forget_user` once `session` has committed the change to the user's credentials."""
        after_commit(session, lambda: self.forget_user(user_id))
        if self._signals is not None:
            await_after_commit(session, lambda: self._tell_others(user_id))

    async def _unchanged_elsewhere(self) -> bool:
        """Whether the entries still stand for every change another process made: `False`
        when the shared mark cannot be read. A moved mark drops every entry."""
        if self._redis is None:
            return True
        try:
            mark = cast(str | None, await self._redis.client.get(self._redis.key(CHANGE_MARK)))
        except (RedisError, OSError) as error:
            logger.warning("redis: could not read the callers' change mark: {}", error)
            return False
        if mark != self._mark_seen:
            self.forget_everyone()
            self._mark_seen = mark
        return True

    async def _tell_others(self, user_id: uuid.UUID) -> None:
        if self._signals is None:
            return
        try:
            if self._redis is not None:
                with redis_required("marking a change of a caller's credentials"):
                    await self._redis.client.set(self._redis.key(CHANGE_MARK), uuid.uuid4().hex)
            await self._signals.publish(FORGET_CHANNEL, str(user_id))
        except ServiceUnavailable:
            # The change is committed; the other processes, cut off from the same Redis, do
            # not trust their caches until they hear from it again.
            logger.warning("other processes could not be told to forget user {}", user_id)

    def _forget_signalled(self, message: str) -> None:
        try:
            user_id = uuid.UUID(message)
        except ValueError:
            logger.warning("redis: a caller-cache signal named no user")
            return
        self.forget_user(user_id)

    def forget_everyone(self) -> None:
        """Drop every entry (signals may have been missed); checks under way are not stored."""
        self._epoch += 1
        self._checks.clear()
        self._entries = {}
        if self._on_forget is not None:
            self._on_forget()

    def forget_user(self, user_id: uuid.UUID) -> None:
        """Drop what is known of `user_id`; checks under way are not stored."""
        self._epoch += 1
        self._checks.clear()  # later requests start a check of their own
        self._entries = {
            key: entry for key, entry in self._entries.items() if entry.principal.user.id != user_id
        }
        if self._on_forget is not None:
            self._on_forget()

    async def _check_and_store(self, key: str, check: Check) -> Principal:
        epoch = self._epoch
        principal = await check()
        if epoch == self._epoch:
            self._store(key, principal)
        return principal

    def _store(self, key: str, principal: Principal) -> None:
        now = self._clock()
        expires = now + self._ttl
        if principal.expires_at is not None:
            left = (principal.expires_at - utcnow()).total_seconds()
            expires = min(expires, now + left)
        if expires <= now:
            return
        if len(self._entries) >= self._max_entries:
            self._entries = {k: e for k, e in self._entries.items() if e.expires > now}
            while len(self._entries) >= self._max_entries:  # still full: the oldest go first
                del self._entries[next(iter(self._entries))]
        self._entries[key] = _Entry(principal, expires)

    def _check_finished(self, key: str, task: asyncio.Task[Principal]) -> None:
        if self._checks.get(key) is task:
            del self._checks[key]
        if not task.cancelled():
            task.exception()  # retrieved here too: every waiter may have gone away
