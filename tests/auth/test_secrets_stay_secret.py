"""No password, password hash, refresh token, API key secret or their digests in any response
or log line — except each token and key in the one response that hands it out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from genai_service.models.api_key import ApiKey
from genai_service.models.refresh_token import RefreshToken
from genai_service.models.user import User
from genai_service.runtime import runtime_of
from genai_service.settings import Settings
from tests.conftest import make_settings
from tests.identity import PASSWORD, bearer, unique_email

NEW_PASSWORD = "Second-Secret-42"
WRONG_PASSWORD = "Wrong-Guess-1234"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, log_level="DEBUG")


async def test_secrets_never_leak(
    app: FastAPI, client: httpx.AsyncClient, captured_logs: list[str]
) -> None:
    responses: list[httpx.Response] = []
    issued: dict[str, httpx.Response] = {}  # secret -> the response that hands it out

    async def call(method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = await client.request(method, url, **kwargs)
        responses.append(response)
        return response

    email = unique_email("secretive")
    await call("POST", "/api/auth/register", json={"email": email, "password": PASSWORD})
    await call("POST", "/api/auth/register", json={"email": email, "password": PASSWORD})
    await call("POST", "/api/auth/register", json={"email": unique_email(), "password": "weak"})
    await call("POST", "/api/auth/token", data={"username": email, "password": WRONG_PASSWORD})
    login = await call("POST", "/api/auth/token", data={"username": email, "password": PASSWORD})
    tokens = login.json()
    issued[tokens["refresh_token"]] = login
    headers = bearer(tokens["access_token"])

    rotated = await call(
        "POST", "/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    issued[rotated.json()["refresh_token"]] = rotated
    await call("POST", "/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})

    second = await call("POST", "/api/auth/token", data={"username": email, "password": PASSWORD})
    issued[second.json()["refresh_token"]] = second
    headers = bearer(second.json()["access_token"])
    key = await call("POST", "/api/keys", json={"name": "ci"}, headers=headers)
    issued[key.json()["secret"]] = key
    await call("GET", "/api/keys", headers=headers)
    await call("GET", "/v1/models", headers=bearer(key.json()["secret"]))
    await call("GET", "/chat", headers=bearer(key.json()["secret"] + "x"))
    await call("GET", "/api/users/me", headers=headers)
    for current in (WRONG_PASSWORD, PASSWORD):
        change = {"password": NEW_PASSWORD, "current_password": current}
        await call("PATCH", "/api/users/me", json=change, headers=headers)
    await call("DELETE", f"/api/keys/{key.json()['id']}", headers=headers)
    await call("POST", "/api/auth/logout", json={"refresh_token": second.json()["refresh_token"]})

    async with runtime_of(app).sessionmaker() as session:
        user = (await session.execute(select(User).where(User.email == email))).scalar_one()
        digests = [
            *(await session.execute(select(RefreshToken.token_digest))).scalars(),
            *(await session.execute(select(ApiKey.key_digest))).scalars(),
        ]
    assert user.hashed_password is not None
    never_shown = [PASSWORD, NEW_PASSWORD, WRONG_PASSWORD, user.hashed_password, *digests]
    # The hash's salt and digest, in case it were shown cut up or re-encoded.
    never_shown += user.hashed_password.split("$")[-2:]
    assert len(digests) >= 4

    assert len(captured_logs) > len(responses)  # DEBUG logging really ran
    logs = "\n".join(captured_logs)
    for secret in [*never_shown, *issued, tokens["access_token"]]:
        assert secret not in logs
    for response in responses:
        shown = response.text + str(response.headers)
        for secret in never_shown:
            assert secret not in shown, (response.request.url, secret)
        for secret, issuer in issued.items():
            if response is not issuer:
                assert secret not in shown, (response.request.url, secret)
