"""Rate-limit counters in Redis, shared by every server process, so a caller gets its limits once
whatever number of processes its calls are spread over.

Each operation is one Lua script over the keys it names, so a check and its count are one step
for every process at once, timed by the Redis server's `TIME` (one clock, whatever the hosts'
clocks say). A window is a string holding the time its bucket is full again, expiring then; a
pool is a sorted set of hold ids scored by the end of their lease, where holds past their lease
(a process that died mid-call) are pruned before counting. The scripts read every key before
writing any, as `InMemoryRateLimitStorage` does, and return times as strings (Redis would cut a
Lua number to an integer).

While Redis is unreachable no call is admitted: `RateLimitsUnavailable` (`503`), never a
count of this process's own.
"""

from __future__ import annotations

from collections.abc import Sequence

from genai_service.guards.rate_limits.errors import RateLimitsUnavailable
from genai_service.guards.rate_limits.memory import window_state
from genai_service.guards.rate_limits.storage import Pool, Return, Verdict, Window
from genai_service.kit.redis_client import SharedRedis, redis_required

_CLOCK = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local EPSILON = 1e-9
local function full_at(key)
  local value = redis.call('GET', key)
  if value then return math.max(tonumber(value), now) end
  return now
end
local function set_full_at(key, at)
  if at > now then
    redis.call('SET', key, string.format('%.6f', at), 'PX', math.ceil((at - now) * 1000))
  else
    redis.call('DEL', key)
  end
end
local function seconds(value)
  return string.format('%.6f', value)
end
"""

ACQUIRE_SCRIPT = (
    _CLOCK
    + """
-- KEYS: the windows, then the pools.
-- ARGV: windows, pools, hold, lease; per window its period, limit and cost; per pool its limit.
local windows, pools = tonumber(ARGV[1]), tonumber(ARGV[2])
local hold, lease = ARGV[3], tonumber(ARGV[4])
local starts, afters = {}, {}
local refused, retry_after = 0, 0
for i = 1, windows do
  local period = tonumber(ARGV[2 + 3 * i])
  local limit = tonumber(ARGV[3 + 3 * i])
  local cost = tonumber(ARGV[4 + 3 * i])
  starts[i] = full_at(KEYS[i])
  afters[i] = starts[i] + cost * period / limit
  local wait = afters[i] - period - now
  if wait > EPSILON and wait > retry_after then
    refused, retry_after = i, wait
  end
end
if refused == 0 then
  for j = 1, pools do
    local key = KEYS[windows + j]
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    if redis.call('ZCARD', key) >= tonumber(ARGV[4 + 3 * windows + j]) then
      refused = windows + j
      break
    end
  end
end
local reply = {tostring(refused), seconds(retry_after)}
if refused ~= 0 then
  for i = 1, windows do reply[2 + i] = seconds(starts[i] - now) end
  return reply
end
for i = 1, windows do
  set_full_at(KEYS[i], afters[i])
  reply[2 + i] = seconds(afters[i] - now)
end
for j = 1, pools do
  local key = KEYS[windows + j]
  redis.call('ZADD', key, now + lease, hold)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', key, math.ceil(tonumber(last[2]) * 1000))
end
return reply
"""
)

RELEASE_SCRIPT = (
    _CLOCK
    + """
-- KEYS: the pools, then the windows. ARGV: pools, hold; per window its period, limit, units.
local pools, hold = tonumber(ARGV[1]), ARGV[2]
for j = 1, pools do
  redis.call('ZREM', KEYS[j], hold)
end
for i = pools + 1, #KEYS do
  local at = 3 * (i - pools)
  local interval = tonumber(ARGV[at]) / tonumber(ARGV[at + 1])
  set_full_at(KEYS[i], full_at(KEYS[i]) - tonumber(ARGV[at + 2]) * interval)
end
return 0
"""
)

RENEW_SCRIPT = (
    _CLOCK
    + """
-- KEYS: pools; ARGV: lease, then the hold in each pool. A hold already gone stays gone.
local lease = tonumber(ARGV[1])
for j = 1, #KEYS do
  if redis.call('ZADD', KEYS[j], 'XX', 'CH', now + lease, ARGV[1 + j]) == 1 then
    local last = redis.call('ZRANGE', KEYS[j], -1, -1, 'WITHSCORES')
    redis.call('PEXPIREAT', KEYS[j], math.ceil(tonumber(last[2]) * 1000))
  end
end
return 0
"""
)


class RedisRateLimitStorage:
    """A `RateLimitStorage` every process sharing `redis` counts in."""

    in_memory = False

    def __init__(self, redis: SharedRedis) -> None:
        self._redis = redis
        self._acquire = redis.client.register_script(ACQUIRE_SCRIPT)
        self._release = redis.client.register_script(RELEASE_SCRIPT)
        self._renew = redis.client.register_script(RENEW_SCRIPT)

    def _key(self, name: str) -> str:
        return self._redis.key("rate-limit", name)

    async def acquire(
        self,
        hold: str,
        windows: Sequence[Window],
        pools: Sequence[Pool],
        *,
        lease_seconds: float,
    ) -> Verdict:
        args: list[str | int | float] = [len(windows), len(pools), hold, lease_seconds]
        for window in windows:
            args += [window.period, window.limit, window.cost]
        args += [pool.limit for pool in pools]
        keys = [self._key(w.key) for w in windows] + [self._key(p.key) for p in pools]
        with redis_required("counting the rate limits", unavailable=RateLimitsUnavailable):
            reply = await self._acquire(keys=keys, args=args)
        refused, retry_after, *full_ins = (str(value) for value in reply)
        states = tuple(
            window_state(window, float(full_in), 0.0)
            for window, full_in in zip(windows, full_ins, strict=True)
        )
        index = int(refused)
        if index == 0:
            return Verdict(states)
        limits: list[Window | Pool] = [*windows, *pools]
        return Verdict(states, limits[index - 1], float(retry_after))

    async def release(self, hold: str, pools: Sequence[Pool], returns: Sequence[Return]) -> None:
        args: list[str | int | float] = [len(pools), hold]
        for given in returns:
            args += [given.window.period, given.window.limit, given.units]
        keys = [self._key(p.key) for p in pools] + [self._key(r.window.key) for r in returns]
        with redis_required("releasing rate-limit slots", unavailable=RateLimitsUnavailable):
            await self._release(keys=keys, args=args)

    async def renew(
        self, holds: Sequence[tuple[str, Sequence[Pool]]], *, lease_seconds: float
    ) -> None:
        keys: list[str] = []
        args: list[str | int | float] = [lease_seconds]
        for hold, pools in holds:
            for pool in pools:
                keys.append(self._key(pool.key))
                args.append(hold)
        if keys:
            with redis_required("renewing rate-limit slots", unavailable=RateLimitsUnavailable):
                await self._renew(keys=keys, args=args)

    async def in_flight(self, key: str) -> int:
        """The live holds of the pool `key`."""
        redis_key = self._key(key)
        with redis_required("counting calls in flight", unavailable=RateLimitsUnavailable):
            async with self._redis.client.pipeline(transaction=True) as pipe:
                pipe.time()
                pipe.zrange(redis_key, 0, -1, withscores=True)
                (seconds, micros), holds = await pipe.execute()
        now = seconds + micros / 1_000_000
        return sum(1 for _, ends in holds if ends > now)
