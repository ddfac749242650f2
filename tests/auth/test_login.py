from __future__ import annotations

import httpx
import jwt
import pytest
from fastapi import FastAPI

from genai_service.auth import service as auth_service
from genai_service.auth.passwords import verify_password
from genai_service.models.user import ANONYMOUS_EMAIL
from tests.identity import PASSWORD, Account, insert_user, login, unique_email


async def test_login_returns_a_token_pair(client: httpx.AsyncClient, alice: Account) -> None:
    response = await login(client, alice.email)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 15 * 60
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == alice.id
    assert claims["type"] == "access"
    assert {"exp", "iat", "jti", "sid"} <= set(claims)
    assert claims["exp"] - claims["iat"] == 15 * 60
    me = await client.get(
        "/api/users/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.json()["email"] == alice.email


async def test_the_email_is_case_insensitive(client: httpx.AsyncClient, alice: Account) -> None:
    assert (await login(client, alice.email.upper())).status_code == 200


async def test_unknown_email_and_wrong_password_look_the_same(
    client: httpx.AsyncClient, alice: Account
) -> None:
    wrong_password = await login(client, alice.email, "Wrong-Password-1")
    unknown_email = await login(client, unique_email("nobody"), PASSWORD)
    for response in (wrong_password, unknown_email):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["content-type"] == "application/problem+json"
    strip = ("request_id",)
    first = {k: v for k, v in wrong_password.json().items() if k not in strip}
    second = {k: v for k, v in unknown_email.json().items() if k not in strip}
    assert first == second
    assert first["detail"] == "Incorrect email or password."


async def test_an_unknown_email_still_costs_a_hash_verification(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str | None] = []

    async def spy(password: str, hashed: str | None) -> tuple[bool, str | None]:
        seen.append(hashed)
        return await verify_password(password, hashed)

    monkeypatch.setattr(auth_service, "verify_password", spy)
    assert (await login(client, unique_email("nobody"))).status_code == 401
    assert seen == [None]  # verify_password(…, None) verifies the dummy hash


async def test_the_anonymous_user_cannot_log_in(client: httpx.AsyncClient) -> None:
    for password in ("", PASSWORD, "anonymous"):
        response = await login(client, ANONYMOUS_EMAIL, password)
        assert response.status_code in {401, 422}


async def test_a_disabled_account_cannot_log_in(
    client: httpx.AsyncClient, admin: Account, alice: Account
) -> None:
    await client.patch(f"/api/users/{alice.id}", json={"is_active": False}, headers=admin.headers)
    response = await login(client, alice.email)
    assert response.status_code == 401
    wrong = await login(client, alice.email, "Wrong-Password-1")
    assert wrong.json()["detail"] == "Incorrect email or password."


async def test_login_is_a_form_not_json(client: httpx.AsyncClient, app: FastAPI) -> None:
    email = unique_email()
    await insert_user(app, email)
    response = await client.post("/api/auth/token", json={"username": email, "password": PASSWORD})
    assert response.status_code == 422


async def test_swagger_authorize_uses_the_token_endpoint(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == "/api/auth/token"
    assert schemes["APIKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (`gsk_...`) or an access token.",
    }
    me = schema["paths"]["/api/users/me"]["get"]
    assert {"OAuth2PasswordBearer": []} in me["security"]
