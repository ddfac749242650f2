"""Limits through the API: an admin's for users, an owner's for its keys (never looser than the
owner's), and what each answer shows."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from genai_service.settings import Limits, LimitsSettings, Settings
from tests.conftest import make_settings
from tests.guards.budget_support import set_user_limits
from tests.identity import Account, new_api_key

ROLE_DEFAULTS = Limits(tokens_per_day=50_000, requests_per_minute=60)
NO_LIMITS = dict.fromkeys(Limits.model_fields)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, limits=LimitsSettings(user=ROLE_DEFAULTS))


async def test_an_admin_sets_reads_and_clears_a_users_limits(
    client: httpx.AsyncClient, admin: Account, alice: Account
) -> None:
    url = f"/api/users/{alice.id}/limits"
    before = (await client.get(url, headers=admin.headers)).json()
    assert before["own"] is None
    assert before["in_force"] == before["role_defaults"] == ROLE_DEFAULTS.model_dump()

    body = await set_user_limits(client, admin, alice, tokens_per_day=1000, max_concurrent=2)
    # A put replaces: what it leaves out is no limit, not the role's default.
    own = {**NO_LIMITS, "tokens_per_day": 1000, "max_concurrent": 2}
    assert body == {
        "user_id": alice.id,
        "own": own,
        "role_defaults": ROLE_DEFAULTS.model_dump(),
        "in_force": own,
    }
    assert (await client.get(url, headers=admin.headers)).json() == body

    assert (await client.delete(url, headers=admin.headers)).status_code == 204
    after = (await client.get(url, headers=admin.headers)).json()
    assert (after["own"], after["in_force"]) == (None, ROLE_DEFAULTS.model_dump())


async def test_a_limits_body_names_what_it_refuses(
    client: httpx.AsyncClient, admin: Account, alice: Account
) -> None:
    url = f"/api/users/{alice.id}/limits"
    for body, field in (
        ({"tokens_per_dya": 10}, "tokens_per_dya"),
        ({"tokens_per_day": -1}, "tokens_per_day"),
        ({"max_concurrent": 0}, "max_concurrent"),
        # Past what the database's columns hold (the schema-driven fuzz run found a 500 here).
        ({"max_concurrent": 2**31}, "max_concurrent"),
        ({"tokens_per_day": 2**63}, "tokens_per_day"),
    ):
        response = await client.put(url, json=body, headers=admin.headers)
        assert response.status_code == 422, body
        assert [error["field"] for error in response.json()["errors"]] == [field]
    missing = await client.put(
        "/api/users/00000000-0000-4000-8000-00000000beef/limits", json={}, headers=admin.headers
    )
    assert missing.status_code == 404


async def test_a_keys_limits_can_only_be_tighter_than_its_owners(
    client: httpx.AsyncClient, admin: Account, alice: Account, bob: Account
) -> None:
    await set_user_limits(client, admin, alice, tokens_per_day=1000, tokens_per_month=20_000)
    key = await new_api_key(client, alice)
    url = f"/api/keys/{key['id']}/limits"

    above = await client.put(url, json={"tokens_per_day": 1001}, headers=alice.headers)
    assert above.status_code == 400
    problem = above.json()
    assert problem["type"].endswith(":key-limit-above-owner")
    assert (problem["field"], problem["owner_limit"]) == ("tokens_per_day", 1000)
    assert "tokens_per_day" in problem["detail"]

    tighter = await client.put(
        url, json={"tokens_per_day": 400, "requests_per_minute": 5}, headers=alice.headers
    )
    assert tighter.status_code == 200, tighter.text
    body = tighter.json()
    assert body["own"] == {**NO_LIMITS, "tokens_per_day": 400, "requests_per_minute": 5}
    assert body["owner"] == {**NO_LIMITS, "tokens_per_day": 1000, "tokens_per_month": 20_000}
    # Both hold: the tighter of each field.
    assert body["in_force"] == {
        **NO_LIMITS,
        "tokens_per_day": 400,
        "tokens_per_month": 20_000,
        "requests_per_minute": 5,
    }

    assert (await client.get(url, headers=bob.headers)).status_code == 404
    assert (await client.put(url, json={}, headers=bob.headers)).status_code == 404
    assert (await client.get(url, headers=admin.headers)).json() == body
    assert (await client.delete(url, headers=alice.headers)).status_code == 204
    cleared = (await client.get(url, headers=alice.headers)).json()
    assert cleared["own"] is None
    assert cleared["in_force"] == cleared["owner"]


async def test_a_user_cannot_raise_its_own_limits(
    client: httpx.AsyncClient, admin: Account, alice: Account
) -> None:
    await set_user_limits(client, admin, alice, tokens_per_day=100)
    raised = await client.put(
        f"/api/users/{alice.id}/limits", json={"tokens_per_day": 10**9}, headers=alice.headers
    )
    assert raised.status_code == 403
    key = await new_api_key(client, alice)
    through_a_key = await client.put(
        f"/api/keys/{key['id']}/limits", json={"tokens_per_day": 101}, headers=alice.headers
    )
    assert through_a_key.status_code == 400
    in_force = (await client.get(f"/api/users/{alice.id}/limits", headers=admin.headers)).json()
    assert in_force["in_force"]["tokens_per_day"] == 100
