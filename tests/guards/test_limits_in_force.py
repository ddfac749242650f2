"""The limits in force for a caller: its role's defaults until it has its own, and a key's own
limits beside its owner's."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI

from genai_service.gateway.caller import Caller
from genai_service.guards.limits import StoredLimits
from genai_service.guards.repository import LimitsRepository
from genai_service.models.limits import CallerLimits
from genai_service.runtime import runtime_of
from genai_service.settings import Limits, LimitsSettings
from tests.identity import Account, new_api_key

DEFAULTS = LimitsSettings(user=Limits(tokens_per_day=1000), admin=Limits(max_concurrent=8))


async def add_limits(app: FastAPI, row: CallerLimits) -> None:
    async with runtime_of(app).sessionmaker.begin() as session:
        await LimitsRepository(session).add(row)


async def test_the_role_defaults_hold_until_a_user_has_limits_of_its_own(
    app: FastAPI, alice: Account, admin: Account
) -> None:
    source = StoredLimits(runtime_of(app).sessionmaker, DEFAULTS)
    alice_caller = Caller(uuid.UUID(alice.id))
    assert (await source.limits_for(alice_caller)).user == Limits(tokens_per_day=1000)
    admin_limits = await source.limits_for(Caller(uuid.UUID(admin.id)))
    assert (admin_limits.user, admin_limits.key) == (Limits(max_concurrent=8), None)
    await add_limits(app, CallerLimits(user_id=uuid.UUID(alice.id), requests_per_minute=5))
    in_force = await source.limits_for(alice_caller)
    assert in_force.user == Limits(requests_per_minute=5)
    assert not in_force.unlimited


async def test_a_key_with_limits_of_its_own_is_held_to_both(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    source = StoredLimits(runtime_of(app).sessionmaker, LimitsSettings())
    key_id = uuid.UUID((await new_api_key(client, alice))["id"])
    caller = Caller(uuid.UUID(alice.id), key_id)
    plain = await source.limits_for(caller)
    assert (plain.user, plain.key) == (Limits(), None)
    assert plain.unlimited
    await add_limits(app, CallerLimits(api_key_id=key_id, tokens_per_minute=300))
    in_force = await source.limits_for(caller)
    assert (in_force.user, in_force.key) == (Limits(), Limits(tokens_per_minute=300))
    other_key = uuid.UUID((await new_api_key(client, alice, "other"))["id"])
    assert (await source.limits_for(Caller(uuid.UUID(alice.id), other_key))).key is None


async def test_a_deleted_user_may_make_no_call(app: FastAPI) -> None:
    source = StoredLimits(runtime_of(app).sessionmaker, LimitsSettings())
    in_force = await source.limits_for(Caller(uuid.uuid4()))
    assert in_force.user.requests_per_minute == 0
