from __future__ import annotations

import httpx

from tests.identity import PASSWORD, Account, login

NEW_PASSWORD = "Brand-New-Secret-7"


async def test_read_me(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.get("/api/users/me", headers=alice.headers)
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["email"], body["role"]) == (alice.id, alice.email, "user")
    assert "password" not in response.text


async def test_change_full_name(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.patch(
        "/api/users/me", json={"full_name": "Alice Liddell"}, headers=alice.headers
    )
    assert response.status_code == 200
    assert response.json()["full_name"] == "Alice Liddell"
    cleared = await client.patch("/api/users/me", json={"full_name": None}, headers=alice.headers)
    assert cleared.json()["full_name"] is None
    untouched = await client.patch("/api/users/me", json={}, headers=alice.headers)
    assert untouched.json()["full_name"] is None


async def test_a_new_password_needs_the_current_one(
    client: httpx.AsyncClient, alice: Account
) -> None:
    missing = await client.patch(
        "/api/users/me", json={"password": NEW_PASSWORD}, headers=alice.headers
    )
    assert missing.status_code == 422
    assert "current_password" in missing.json()["detail"]
    wrong = await client.patch(
        "/api/users/me",
        json={"password": NEW_PASSWORD, "current_password": "Not-The-One-1"},
        headers=alice.headers,
    )
    assert wrong.status_code == 403
    assert (await login(client, alice.email)).status_code == 200


async def test_a_new_password_must_keep_the_policy(
    client: httpx.AsyncClient, alice: Account
) -> None:
    response = await client.patch(
        "/api/users/me",
        json={"password": "weak", "current_password": PASSWORD},
        headers=alice.headers,
    )
    assert response.status_code == 422
    assert {e["type"] for e in response.json()["errors"]} == {
        "password_too_short",
        "password_no_digit",
        "password_no_uppercase",
    }


async def test_changing_the_password_ends_the_other_sessions_only(
    client: httpx.AsyncClient, alice: Account
) -> None:
    other = (await login(client, alice.email)).json()
    response = await client.patch(
        "/api/users/me",
        json={"password": NEW_PASSWORD, "current_password": PASSWORD},
        headers=alice.headers,
    )
    assert response.status_code == 200
    # The other session is over: its access token and its refresh token.
    other_headers = {"Authorization": f"Bearer {other['access_token']}"}
    assert (await client.get("/api/users/me", headers=other_headers)).status_code == 401
    other_refresh = await client.post(
        "/api/auth/refresh", json={"refresh_token": other["refresh_token"]}
    )
    assert other_refresh.status_code == 401
    # The session that changed the password goes on.
    assert (await client.get("/api/users/me", headers=alice.headers)).status_code == 200
    own_refresh = await client.post(
        "/api/auth/refresh", json={"refresh_token": alice.refresh_token}
    )
    assert own_refresh.status_code == 200
    # Only the new password logs in.
    assert (await login(client, alice.email)).status_code == 401
    assert (await login(client, alice.email, NEW_PASSWORD)).status_code == 200


async def test_changing_the_password_with_an_api_key_ends_every_session(
    client: httpx.AsyncClient, alice: Account
) -> None:
    key = (await client.post("/api/keys", json={"name": "k"}, headers=alice.headers)).json()
    response = await client.patch(
        "/api/users/me",
        json={"password": NEW_PASSWORD, "current_password": PASSWORD},
        headers={"Authorization": f"Bearer {key['secret']}"},
    )
    assert response.status_code == 200
    assert (await client.get("/api/users/me", headers=alice.headers)).status_code == 401
    # The key itself is a separate credential and keeps working.
    key_headers = {"Authorization": f"Bearer {key['secret']}"}
    assert (await client.get("/api/users/me", headers=key_headers)).status_code == 200
