"""How a cache kept by every server process learns at once of a change another process made.

The process that made the change, once committed and before it answers, sets a shared mark in
Redis to a new random value and publishes a signal. Each process reads the mark before it
trusts its cache, one Redis round trip instead of a database read: when the mark moved, the
cache is dropped. The signal alone could arrive after the next request; the mark cannot, and
the signal lets a process drop at once what it knows to be stale. While the mark cannot be
read, or the signals may have been missed (until listening resumes), the cache is not trusted.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import cast

from loguru import logger
from redis.exceptions import RedisError

from genai_service.kit.errors import ServiceUnavailable
from genai_service.kit.redis_client import SharedRedis, redis_required
from genai_service.kit.redis_signals import Handler, RedisSignals


class SharedChangeMark:
    def __init__(
        self,
        redis: SharedRedis,
        signals: RedisSignals,
        name: str,
        *,
        on_change: Callable[[], None],
        on_signal: Handler | None = None,
    ) -> None:
        """`on_change`: drop the whole cache (the mark moved, or signals may have been missed);
        `on_signal`: what to drop on a signal (by default, `on_change`)."""
        self._redis = redis
        self._signals = signals
        self._mark_key = redis.key(name, "changed")
        self._channel = f"{name}-changed"
        self._on_change = on_change
        self._seen: str | None = None
        """The mark the cache's entries were stored under."""
        signals.listen(self._channel, on_signal or (lambda _: on_change()))
        signals.on_gap(on_change)

    async def unchanged_elsewhere(self) -> bool:
        """Whether the cache still stands for every change another process made: `False` while
        signals may be missed or the mark cannot be read. A moved mark drops the cache."""
        if not self._signals.connected:
            return False
        try:
            mark = cast(str | None, await self._redis.client.get(self._mark_key))
        except (RedisError, OSError) as error:
            logger.warning("redis: could not read the change mark {}: {}", self._mark_key, error)
            return False
        if mark != self._seen:
            self._on_change()
            self._seen = mark
        return True

    async def tell_others(self, message: str = "") -> None:
        """Move the mark and signal `message`, after a committed change. When Redis cannot be
        reached, the change is still committed: the others see it once their entries expire
        (or at once, if they are cut off from Redis too and trust no entry meanwhile)."""
        try:
            with redis_required("marking a change for the other server processes"):
                await self._redis.client.set(self._mark_key, uuid.uuid4().hex)
            await self._signals.publish(self._channel, message)
        except ServiceUnavailable:
            logger.warning(
                "redis: the other processes could not be told of a change ({})", self._channel
            )
