from __future__ import annotations

import uuid

import httpx
import openai
import pytest
from fastapi import FastAPI

from tests.identity import Account, bearer, login, new_account, new_api_key


async def test_admins_list_users_a_page_at_a_time(
    client: httpx.AsyncClient, app: FastAPI, admin: Account, alice: Account, bob: Account
) -> None:
    response = await client.get("/api/users", params={"limit": 2}, headers=admin.headers)
    assert response.status_code == 200
    page = response.json()
    assert page["total"] == 4  # the anonymous user, admin, alice, bob
    assert (page["limit"], page["offset"], len(page["items"])) == (2, 0, 2)
    rest = (
        await client.get("/api/users", params={"limit": 2, "offset": 2}, headers=admin.headers)
    ).json()
    emails = {u["email"] for u in page["items"] + rest["items"]}
    assert {admin.email, alice.email, bob.email} <= emails
    assert "password" not in response.text


async def test_users_cannot_administer(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    assert (await client.get("/api/users", headers=alice.headers)).status_code == 403
    response = await client.patch(
        f"/api/users/{bob.id}", json={"is_active": False}, headers=alice.headers
    )
    assert response.status_code == 403
    promote = await client.patch(
        f"/api/users/{alice.id}", json={"role": "admin"}, headers=alice.headers
    )
    assert promote.status_code == 403


async def test_an_admin_grants_and_removes_the_admin_role(
    client: httpx.AsyncClient, admin: Account, alice: Account
) -> None:
    response = await client.patch(
        f"/api/users/{alice.id}", json={"role": "admin"}, headers=admin.headers
    )
    assert (response.status_code, response.json()["role"]) == (200, "admin")
    assert (await client.get("/api/users", headers=alice.headers)).status_code == 200
    await client.patch(f"/api/users/{alice.id}", json={"role": "user"}, headers=admin.headers)
    assert (await client.get("/api/users", headers=alice.headers)).status_code == 403


async def test_bad_admin_updates(client: httpx.AsyncClient, admin: Account) -> None:
    unknown = await client.patch(
        f"/api/users/{uuid.uuid4()}", json={"is_active": False}, headers=admin.headers
    )
    assert unknown.status_code == 404
    bad_role = await client.patch(
        f"/api/users/{admin.id}", json={"role": "root"}, headers=admin.headers
    )
    assert bad_role.status_code == 422
    for change in ({"role": "user"}, {"is_active": False}):
        itself = await client.patch(f"/api/users/{admin.id}", json=change, headers=admin.headers)
        assert itself.status_code == 409


async def test_deactivation_stops_tokens_and_keys_at_once(
    client: httpx.AsyncClient, app: FastAPI, admin: Account
) -> None:
    carol = await new_account(app, client, "carol")
    key = await new_api_key(client, carol)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport) as http:
        sdk = openai.AsyncOpenAI(
            base_url="http://testserver/v1", api_key=key["secret"], http_client=http, max_retries=0
        )
        assert [m.id async for m in sdk.models.list()]

        response = await client.patch(
            f"/api/users/{carol.id}", json={"is_active": False}, headers=admin.headers
        )
        assert (response.status_code, response.json()["is_active"]) == (200, False)

        assert (await client.get("/api/users/me", headers=carol.headers)).status_code == 401
        assert (await client.get("/chat", headers=bearer(key["secret"]))).status_code == 401
        refreshed = await client.post(
            "/api/auth/refresh", json={"refresh_token": carol.refresh_token}
        )
        assert refreshed.status_code == 401
        with pytest.raises(openai.AuthenticationError):
            await sdk.models.list()

        # Reactivated: the key works again; the old sessions stay revoked.
        await client.patch(
            f"/api/users/{carol.id}", json={"is_active": True}, headers=admin.headers
        )
        assert [m.id async for m in sdk.models.list()]
        assert (await client.get("/api/users/me", headers=carol.headers)).status_code == 401
        assert (await login(client, carol.email)).status_code == 200
