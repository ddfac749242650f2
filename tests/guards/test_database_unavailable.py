"""A database the guards cannot reach refuses the call with a 503 that says to send it again
(`Retry-After`), never a 500: the limits cannot be read, or the budget cannot be reserved."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from genai_service.gateway.caller import Caller
from genai_service.gateway.guards import ModelCall
from genai_service.guards.budget import BudgetGuard
from genai_service.guards.errors import BudgetUnavailable, LimitsUnavailable
from genai_service.guards.limits import LimitsInForce, StoredLimits
from genai_service.kit.db import create_engine, create_sessionmaker
from genai_service.settings import Limits, LimitsSettings

CALLER = Caller(uuid.uuid4())


def unreachable(tmp_path: Path) -> str:
    """A SQLite file in a folder that does not exist: every connection fails."""
    return f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'genai.db'}"


class Budgeted:
    """The caller is held to a daily budget (read elsewhere, e.g. from the cache)."""

    async def limits_for(self, caller: Caller) -> LimitsInForce:
        return LimitsInForce(user=Limits(tokens_per_day=1_000), key=None)


async def test_limits_that_cannot_be_read_are_a_503(tmp_path: Path) -> None:
    engine = create_engine(unreachable(tmp_path))
    try:
        source = StoredLimits(create_sessionmaker(engine), LimitsSettings())
        with pytest.raises(LimitsUnavailable) as refused:
            await source.limits_for(CALLER)
    finally:
        await engine.dispose()
    assert refused.value.status_code == 503
    assert refused.value.headers == {"Retry-After": "1"}


async def test_a_budget_that_cannot_be_reserved_is_a_503(tmp_path: Path) -> None:
    engine = create_engine(unreachable(tmp_path))
    try:
        guard = BudgetGuard(create_sessionmaker(engine), Budgeted(), LimitsSettings())
        call = ModelCall(CALLER, "chat", "m", "chat", prompt_tokens=10, max_completion_tokens=20)
        with pytest.raises(BudgetUnavailable) as refused:
            await guard.admit(call)
    finally:
        await engine.dispose()
    assert refused.value.status_code == 503
    assert refused.value.headers == {"Retry-After": "1"}
