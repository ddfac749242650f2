"""Limits remembered per caller: read once per time to live, read again at once after a change
committed through this process, never stored from a read that a change overtook."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from fastapi import FastAPI

from genai_service.gateway.caller import Caller
from genai_service.guards.limits import LimitsInForce, StoredLimits
from genai_service.guards.limits_cache import CachedLimits
from genai_service.guards.repository import LimitsRepository
from genai_service.models.limits import CallerLimits
from genai_service.runtime import runtime_of
from genai_service.settings import LimitsSettings
from tests.identity import Account


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def write_limits(
    app: FastAPI, user_id: str, cache: CachedLimits | None, **limits: int
) -> None:
    async with runtime_of(app).sessionmaker.begin() as session:
        repository = LimitsRepository(session)
        row = await repository.of_user(uuid.UUID(user_id))
        if row is None:
            await repository.add(CallerLimits(user_id=uuid.UUID(user_id), **limits))
        else:
            for name, value in limits.items():
                setattr(row, name, value)
        if cache is not None:
            cache.forget_on_commit(session)


async def test_limits_are_read_again_after_their_time_or_a_change_made_here(
    app: FastAPI, alice: Account
) -> None:
    clock = Clock()
    cache = CachedLimits(
        StoredLimits(runtime_of(app).sessionmaker, LimitsSettings()), 5.0, clock=clock
    )
    caller = Caller(uuid.UUID(alice.id))
    assert (await cache.limits_for(caller)).user.requests_per_minute is None
    await write_limits(app, alice.id, None, requests_per_minute=5)  # as another process would
    assert (await cache.limits_for(caller)).user.requests_per_minute is None
    clock.now += 5.0
    assert (await cache.limits_for(caller)).user.requests_per_minute == 5
    await write_limits(app, alice.id, cache, requests_per_minute=7)  # through this process
    assert (await cache.limits_for(caller)).user.requests_per_minute == 7


async def test_a_read_overtaken_by_a_change_is_not_remembered(app: FastAPI, alice: Account) -> None:
    stored = StoredLimits(runtime_of(app).sessionmaker, LimitsSettings())
    read, proceed = asyncio.Event(), asyncio.Event()

    class Slow:
        async def limits_for(self, caller: Caller) -> LimitsInForce:
            limits = await stored.limits_for(caller)
            read.set()
            await proceed.wait()
            return limits

    cache = CachedLimits(Slow(), 60.0)
    caller = Caller(uuid.UUID(alice.id))
    early = asyncio.create_task(cache.limits_for(caller))
    await read.wait()  # the database was read before the change
    await write_limits(app, alice.id, cache, max_concurrent=2)
    proceed.set()
    assert (await early).user.max_concurrent is None
    assert (await cache.limits_for(caller)).user.max_concurrent == 2


async def test_a_rolled_back_change_forgets_nothing(
    app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    cache = runtime_of(app).limits
    caller = Caller(uuid.UUID(alice.id))
    assert (await cache.limits_for(caller)).user.tokens_per_minute is None
    try:
        async with runtime_of(app).sessionmaker.begin() as session:
            await LimitsRepository(session).add(
                CallerLimits(user_id=uuid.UUID(alice.id), tokens_per_minute=10)
            )
            cache.forget_on_commit(session)
            raise RuntimeError("the change fails")
    except RuntimeError:
        pass
    assert (await cache.limits_for(caller)).user.tokens_per_minute is None


class CountedReads:
    """The database's limits, counting the reads that reach it."""

    def __init__(self, source: StoredLimits) -> None:
        self.source = source
        self.reads = 0

    async def limits_for(self, caller: Caller) -> LimitsInForce:
        self.reads += 1
        return await self.source.limits_for(caller)


async def test_calls_that_miss_at_once_share_one_read(app: FastAPI, alice: Account) -> None:
    await write_limits(app, alice.id, None, requests_per_minute=9)
    counted = CountedReads(StoredLimits(runtime_of(app).sessionmaker, LimitsSettings()))
    clock = Clock()
    cache = CachedLimits(counted, 5.0, clock=clock)
    caller = Caller(uuid.UUID(alice.id))
    found = await asyncio.gather(*(cache.limits_for(caller) for _ in range(16)))
    assert {limits.user.requests_per_minute for limits in found} == {9}
    assert counted.reads == 1
    clock.now += 5.0
    await asyncio.gather(*(cache.limits_for(caller) for _ in range(16)))
    assert counted.reads == 2
