"""The login throttle's windows on Redis, so every server process counts the same attempts.

Each window of each key is a sorted set of attempts scored by the time they were made, on the
Redis server's clock (one clock for every process). `hit` is one script: drop what left the
window, count, and add the attempt only when under the limit — check and count stay one step,
however many processes a burst is spread over. Keys hold a digest of the account and address,
not the email itself, and expire with their window.
"""

from __future__ import annotations

import hashlib
import uuid

from genai_service.auth.throttle import LoginThrottle
from genai_service.kit.redis_client import SharedRedis, redis_required
from genai_service.settings import AuthSettings

HIT_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
  return tonumber(oldest[2]) + window - now
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 0
"""


class RedisFailureWindow:
    """At most `limit` attempts per key within the last `window` seconds (a `FailureWindow`)."""

    def __init__(self, redis: SharedRedis, name: str, *, limit: int, window: float) -> None:
        self._redis = redis
        self._name = name
        self.limit = limit
        self._window_ms = max(round(window * 1000), 1)
        self._hit = redis.client.register_script(HIT_SCRIPT)

    def _key(self, key: str) -> str:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return self._redis.key("login-throttle", self._name, digest)

    async def hit(self, key: str) -> float:
        with redis_required("checking the login throttle"):
            wait_ms = await self._hit(
                keys=[self._key(key)], args=[self._window_ms, self.limit, uuid.uuid4().hex]
            )
        return max(int(wait_ms), 0) / 1000

    async def forgive(self, key: str) -> None:
        with redis_required("updating the login throttle"):
            await self._redis.client.zpopmax(self._key(key))

    async def clear(self, key: str) -> None:
        with redis_required("updating the login throttle"):
            await self._redis.client.delete(self._key(key))


def redis_login_throttle(settings: AuthSettings, redis: SharedRedis) -> LoginThrottle:
    """The login throttle of `settings`, counted in Redis."""
    window = float(settings.login_failure_window_seconds)
    account_limit = settings.login_failures_per_account
    return LoginThrottle(
        per_account_and_client=RedisFailureWindow(
            redis,
            "account-client",
            limit=settings.login_failures_per_account_and_client,
            window=window,
        ),
        per_client=RedisFailureWindow(
            redis, "client", limit=settings.login_failures_per_client, window=window
        ),
        per_account=(
            RedisFailureWindow(redis, "account", limit=account_limit, window=window)
            if account_limit is not None
            else None
        ),
    )
