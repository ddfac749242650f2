"""A user's role holds its defaults: changed by an admin, the new role's limits hold from the next
model call on, though this process remembers the limits it read for a minute."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from genai_service.settings import Limits, LimitsSettings, Settings
from tests.conftest import make_settings
from tests.guards.support import chat
from tests.identity import Account


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    limits = LimitsSettings(user=Limits(requests_per_minute=1), cache_seconds=60.0)
    return make_settings(tmp_path, database_url, limits=limits)


async def call(client: httpx.AsyncClient, account: Account) -> httpx.Response:
    return await client.post(
        "/v1/chat/completions", json=chat(max_tokens=5), headers=account.headers
    )


async def set_role(client: httpx.AsyncClient, admin: Account, user: Account, role: str) -> None:
    response = await client.patch(
        f"/api/users/{user.id}", json={"role": role}, headers=admin.headers
    )
    assert response.status_code == 200, response.text


async def test_a_changed_role_brings_its_defaults_at_once(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    first = await call(client, alice)
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit-requests"] == "1"
    assert (await call(client, alice)).status_code == 429
    await set_role(client, admin, alice, "admin")  # admins: no limits by default
    promoted = await call(client, alice)
    assert promoted.status_code == 200
    assert "x-ratelimit-limit-requests" not in promoted.headers
    await set_role(client, admin, alice, "user")
    demoted = await call(client, alice)
    assert demoted.status_code == 429
    assert demoted.json()["error"]["code"] == "rate_limit_exceeded"
