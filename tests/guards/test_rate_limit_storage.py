"""The rate-limit storages, in memory and on Redis, held to one contract: buckets that refill
continuously, several limits checked and counted as one, slots that come back on release or
when their lease ends (and not while it is renewed), unused tokens given back, a burst of
concurrent acquires admitting exactly the limit; and OpenAI's way of writing the time until a
bucket is full.

Time is real (Redis counts on its server's clock): windows are seconds long, and the checks
of time allow for a slow machine."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from genai_service.guards.rate_limits.headers import duration
from genai_service.guards.rate_limits.memory import InMemoryRateLimitStorage
from genai_service.guards.rate_limits.redis import RedisRateLimitStorage
from genai_service.guards.rate_limits.storage import Pool, RateLimitStorage, Return, Window
from genai_service.kit.redis_client import SharedRedis
from genai_service.settings import RedisSettings

LEASE = 3600.0
PERIOD = 3.0
"""A window's period here: a unit of a bucket of 3 comes back in a second."""
SLACK = 0.25
"""Seconds a slow machine may take between two steps of a test."""


@pytest.fixture(params=["memory", "redis"])
async def storage(request: pytest.FixtureRequest) -> AsyncIterator[RateLimitStorage]:
    if request.param == "memory":
        yield InMemoryRateLimitStorage()
        return
    url: str = request.getfixturevalue("redis_url")
    redis = SharedRedis.from_settings(
        RedisSettings(url=url, key_prefix=f"test-{uuid.uuid4().hex[:12]}:")
    )
    try:
        yield RedisRateLimitStorage(redis)
    finally:
        await redis.close()


async def in_flight(storage: RateLimitStorage, key: str) -> int:
    if isinstance(storage, InMemoryRateLimitStorage):
        return storage.in_flight(key)
    assert isinstance(storage, RedisRateLimitStorage)
    return await storage.in_flight(key)


def requests(limit: int, key: str = "user:a:requests", period: float = PERIOD) -> Window:
    return Window(key, limit, period, 1)


async def test_a_full_bucket_takes_its_limit_then_refills_one_unit_at_a_time(
    storage: RateLimitStorage,
) -> None:
    window = requests(3)
    remaining = []
    for _ in range(3):
        verdict = await storage.acquire("h", [window], [], lease_seconds=LEASE)
        assert verdict.admitted
        remaining.append(verdict.windows[0].remaining)
    assert remaining == [2, 1, 0]
    assert verdict.windows[0].full_in == pytest.approx(PERIOD, abs=SLACK)
    refused = await storage.acquire("h", [window], [], lease_seconds=LEASE)
    assert refused.refused_by == window
    assert refused.retry_after == pytest.approx(1.0, abs=SLACK)
    assert refused.windows[0].remaining == 0
    await asyncio.sleep(refused.retry_after)
    again = await storage.acquire("h", [window], [], lease_seconds=LEASE)
    assert again.admitted
    assert again.windows[0].remaining == 0
    await asyncio.sleep(again.windows[0].full_in)
    full = await storage.acquire("h", [window], [], lease_seconds=LEASE)
    assert full.windows[0].remaining == 2


async def test_a_call_refused_by_one_limit_takes_nothing_from_the_others(
    storage: RateLimitStorage,
) -> None:
    user, key = requests(10, "user:a:requests", 60), requests(1, "key:k:requests", 60)
    pool = Pool("user:a:in-flight", 5)
    assert (await storage.acquire("first", [user, key], [pool], lease_seconds=LEASE)).admitted
    refused = await storage.acquire("second", [user, key], [pool], lease_seconds=LEASE)
    assert refused.refused_by == key
    assert [state.remaining for state in refused.windows] == [9, 0]
    assert await in_flight(storage, pool.key) == 1
    alone = await storage.acquire("third", [user], [], lease_seconds=LEASE)
    assert alone.windows[0].remaining == 8


async def test_a_full_pool_refuses_and_takes_nothing_from_the_windows(
    storage: RateLimitStorage,
) -> None:
    window, pool = requests(10, period=60), Pool("user:a:in-flight", 1)
    assert (await storage.acquire("first", [window], [pool], lease_seconds=LEASE)).admitted
    refused = await storage.acquire("second", [window], [pool], lease_seconds=LEASE)
    assert (refused.refused_by, refused.retry_after) == (pool, 0.0)
    assert refused.windows[0].remaining == 9


async def test_of_several_full_windows_the_longest_wait_is_named(
    storage: RateLimitStorage,
) -> None:
    fast, slow = requests(60, "fast", 60), requests(2, "slow", 60)
    for _ in range(2):
        await storage.acquire("h", [slow], [], lease_seconds=LEASE)
    for _ in range(60):
        await storage.acquire("h", [fast], [], lease_seconds=LEASE)
    refused = await storage.acquire("h", [fast, slow], [], lease_seconds=LEASE)
    assert refused.refused_by == slow
    assert refused.retry_after == pytest.approx(30.0, abs=SLACK)


async def test_a_pool_holds_its_limit_until_a_hold_is_released(
    storage: RateLimitStorage,
) -> None:
    pool = Pool("user:a:in-flight", 2)
    for hold in ("a", "b"):
        assert (await storage.acquire(hold, [], [pool], lease_seconds=LEASE)).admitted
    refused = await storage.acquire("c", [], [pool], lease_seconds=LEASE)
    assert (refused.refused_by, refused.retry_after) == (pool, 0.0)
    await storage.release("a", [pool], [])
    assert await in_flight(storage, pool.key) == 1
    assert (await storage.acquire("c", [], [pool], lease_seconds=LEASE)).admitted


async def test_a_hold_whose_lease_ended_no_longer_counts_unless_renewed(
    storage: RateLimitStorage,
) -> None:
    pool = Pool("user:a:in-flight", 2)
    assert (await storage.acquire("lost", [], [pool], lease_seconds=0.5)).admitted
    assert (await storage.acquire("kept", [], [pool], lease_seconds=0.5)).admitted
    assert not (await storage.acquire("next", [], [pool], lease_seconds=0.5)).admitted
    deadline = time.monotonic() + 10
    while await in_flight(storage, pool.key) == 2:  # the lost hold's lease runs out...
        assert time.monotonic() < deadline, "a hold outlived its lease"
        await storage.renew([("kept", [pool])], lease_seconds=0.5)  # ...the kept one is renewed
        await asyncio.sleep(0.05)
    assert await in_flight(storage, pool.key) == 1
    assert (await storage.acquire("next", [], [pool], lease_seconds=0.5)).admitted
    assert not (await storage.acquire("more", [], [pool], lease_seconds=0.5)).admitted
    await storage.release("next", [pool], [])
    await storage.renew([("next", [pool])], lease_seconds=LEASE)  # released: not brought back
    assert await in_flight(storage, pool.key) == 1


async def test_tokens_given_back_fit_again_and_tokens_overused_are_taken(
    storage: RateLimitStorage,
) -> None:
    held = Window("user:a:tokens", 100, 60.0, 80)
    assert (await storage.acquire("a", [held], [], lease_seconds=LEASE)).admitted
    other = Window("user:a:tokens", 100, 60.0, 50)
    assert not (await storage.acquire("b", [other], [], lease_seconds=LEASE)).admitted
    await storage.release("a", [], [Return(held, 70)])  # used 10 of the 80 it held
    verdict = await storage.acquire("b", [other], [], lease_seconds=LEASE)
    assert verdict.admitted
    assert verdict.windows[0].remaining == 40
    await storage.release("b", [], [Return(other, -20)])  # used 70 of the 50 it held
    probe = Window("user:a:tokens", 100, 60.0, 0)
    assert (await storage.acquire("c", [probe], [], lease_seconds=LEASE)).windows[0].remaining == 20


async def test_fifty_concurrent_acquires_against_ten_admit_exactly_ten(
    storage: RateLimitStorage,
) -> None:
    window, pool = requests(10, period=60), Pool("user:a:in-flight", 10)
    verdicts = await asyncio.gather(
        *(storage.acquire(f"h{n}", [window], [], lease_seconds=LEASE) for n in range(50))
    )
    assert sum(verdict.admitted for verdict in verdicts) == 10
    slots = await asyncio.gather(
        *(storage.acquire(f"s{n}", [], [pool], lease_seconds=LEASE) for n in range(50))
    )
    assert sum(verdict.admitted for verdict in slots) == 10
    assert await in_flight(storage, pool.key) == 10


@pytest.mark.parametrize(
    ("seconds", "written"),
    [
        (0.0, "0s"),
        (0.02, "20ms"),
        (0.9994, "1s"),
        (1.0, "1s"),
        (8.64, "8.64s"),
        (59.9991, "1m0s"),
        (360.0, "6m0s"),
        (87.36, "1m27.36s"),
        (3723.5, "1h2m3.5s"),
    ],
)
def test_durations_are_written_as_openai_writes_them(seconds: float, written: str) -> None:
    assert duration(seconds) == written
