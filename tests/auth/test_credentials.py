"""Bearer credentials: forged, expired and malformed ones are 401, whatever the mode."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from genai_service.runtime import runtime_of
from tests.identity import Account, bearer


def secret_of(app: FastAPI) -> str:
    key: str = runtime_of(app).settings.secret_key.get_secret_value()
    return key


def claims_for(account: Account, **overrides: Any) -> dict[str, Any]:
    issued = jwt.decode(account.access_token, options={"verify_signature": False})
    return {**issued, **overrides}


async def status_of(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    return (await client.get("/api/users/me", headers=headers)).status_code


async def test_a_valid_token_works(client: httpx.AsyncClient, alice: Account) -> None:
    assert await status_of(client, alice.headers) == 200


async def test_alg_none_is_refused(client: httpx.AsyncClient, alice: Account) -> None:
    token = jwt.encode(claims_for(alice), key=None, algorithm="none")
    response = await client.get("/api/users/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_another_key_is_refused(client: httpx.AsyncClient, alice: Account) -> None:
    token = jwt.encode(claims_for(alice), "another-secret-" + "x" * 40, algorithm="HS256")
    assert await status_of(client, bearer(token)) == 401


async def test_another_algorithm_is_refused(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    token = jwt.encode(claims_for(alice), secret_of(app), algorithm="HS512")
    assert await status_of(client, bearer(token)) == 401


async def test_an_expired_token_is_refused(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    past = datetime.now(UTC) - timedelta(hours=1)
    claims = claims_for(alice, iat=past, exp=past + timedelta(minutes=15))
    assert await status_of(client, bearer(jwt.encode(claims, secret_of(app), "HS256"))) == 401


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "jti", "type", "sid"])
async def test_every_claim_is_required(
    client: httpx.AsyncClient, app: FastAPI, alice: Account, missing: str
) -> None:
    claims = claims_for(alice)
    del claims[missing]
    assert await status_of(client, bearer(jwt.encode(claims, secret_of(app), "HS256"))) == 401


async def test_a_token_of_another_type_is_refused(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    token = jwt.encode(claims_for(alice, type="refresh"), secret_of(app), "HS256")
    assert await status_of(client, bearer(token)) == 401


async def test_a_token_for_a_user_that_does_not_exist_is_refused(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    token = jwt.encode(claims_for(alice, sub=str(uuid.uuid4())), secret_of(app), "HS256")
    assert await status_of(client, bearer(token)) == 401


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "garbage", "Bearer not.a.jwt"],
)
async def test_malformed_credentials_are_401_even_in_anonymous_mode(
    client: httpx.AsyncClient, app: FastAPI, header: str
) -> None:
    assert runtime_of(app).settings.allows_anonymous
    response = await client.get("/chat", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_401_under_v1_has_openais_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/models", headers=bearer("gsk_not-a-real-key"))
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


async def test_a_session_of_another_user_is_refused(
    client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
) -> None:
    """A token signed for alice but naming bob's live session: the session must be alice's."""
    bobs_session = claims_for(bob)["sid"]
    claims = claims_for(alice, sid=bobs_session)
    assert await status_of(client, bear(claims, app)) == 401
    assert await status_of(client, bear(claims_for(alice), app)) == 200


def bear(claims: dict[str, Any], app: FastAPI) -> dict[str, str]:
    return bearer(jwt.encode(claims, secret_of(app), algorithm="HS256"))
