"""The in-memory rate-limit storage: buckets that refill continuously, several limits checked and
counted as one, slots that come back on release or when their lease ends, unused tokens given
back; and OpenAI's way of writing the time until a bucket is full."""

from __future__ import annotations

import pytest

from genai_service.guards.rate_limits.headers import duration
from genai_service.guards.rate_limits.memory import InMemoryRateLimitStorage
from genai_service.guards.rate_limits.storage import Pool, Return, Window

LEASE = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def storage(clock: Clock) -> InMemoryRateLimitStorage:
    return InMemoryRateLimitStorage(clock)


def requests(limit: int, key: str = "user:a:requests") -> Window:
    return Window(key, limit, 60.0, 1)


async def test_a_full_bucket_takes_its_limit_then_refills_one_unit_at_a_time(
    storage: InMemoryRateLimitStorage, clock: Clock
) -> None:
    window = requests(3)
    remaining = []
    for _ in range(3):
        verdict = await storage.acquire("h", [window], [], lease_seconds=LEASE)
        assert verdict.admitted
        remaining.append(verdict.windows[0].remaining)
    assert remaining == [2, 1, 0]
    assert verdict.windows[0].full_in == pytest.approx(60.0)
    refused = await storage.acquire("h", [window], [], lease_seconds=LEASE)
    assert refused.refused_by == window
    assert refused.retry_after == pytest.approx(20.0)
    assert refused.windows[0].remaining == 0
    clock.now += 19.9
    assert not (await storage.acquire("h", [window], [], lease_seconds=LEASE)).admitted
    clock.now += 0.1
    again = await storage.acquire("h", [window], [], lease_seconds=LEASE)
    assert again.admitted
    assert again.windows[0].remaining == 0
    clock.now += 60.0
    assert (await storage.acquire("h", [window], [], lease_seconds=LEASE)).windows[0].remaining == 2


async def test_a_call_refused_by_one_limit_takes_nothing_from_the_others(
    storage: InMemoryRateLimitStorage,
) -> None:
    user, key = requests(10, "user:a:requests"), requests(1, "key:k:requests")
    pool = Pool("user:a:in-flight", 5)
    assert (await storage.acquire("first", [user, key], [pool], lease_seconds=LEASE)).admitted
    refused = await storage.acquire("second", [user, key], [pool], lease_seconds=LEASE)
    assert refused.refused_by == key
    assert [state.remaining for state in refused.windows] == [9, 0]
    assert storage.in_flight(pool.key) == 1
    alone = await storage.acquire("third", [user], [], lease_seconds=LEASE)
    assert alone.windows[0].remaining == 8


async def test_of_several_full_windows_the_longest_wait_is_named(
    storage: InMemoryRateLimitStorage,
) -> None:
    fast, slow = requests(60, "fast"), requests(2, "slow")
    for _ in range(2):
        await storage.acquire("h", [slow], [], lease_seconds=LEASE)
    for _ in range(60):
        await storage.acquire("h", [fast], [], lease_seconds=LEASE)
    refused = await storage.acquire("h", [fast, slow], [], lease_seconds=LEASE)
    assert refused.refused_by == slow
    assert refused.retry_after == pytest.approx(30.0)


async def test_a_pool_holds_its_limit_until_a_hold_is_released(
    storage: InMemoryRateLimitStorage,
) -> None:
    pool = Pool("user:a:in-flight", 2)
    for hold in ("a", "b"):
        assert (await storage.acquire(hold, [], [pool], lease_seconds=LEASE)).admitted
    refused = await storage.acquire("c", [], [pool], lease_seconds=LEASE)
    assert (refused.refused_by, refused.retry_after) == (pool, 0.0)
    await storage.release("a", [pool], [])
    assert storage.in_flight(pool.key) == 1
    assert (await storage.acquire("c", [], [pool], lease_seconds=LEASE)).admitted


async def test_a_hold_whose_lease_ended_no_longer_counts(
    storage: InMemoryRateLimitStorage, clock: Clock
) -> None:
    pool = Pool("user:a:in-flight", 1)
    assert (await storage.acquire("lost", [], [pool], lease_seconds=30.0)).admitted
    assert not (await storage.acquire("next", [], [pool], lease_seconds=30.0)).admitted
    clock.now += 30.0
    assert (await storage.acquire("next", [], [pool], lease_seconds=30.0)).admitted


async def test_tokens_given_back_fit_again_and_tokens_overused_are_taken(
    storage: InMemoryRateLimitStorage,
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
