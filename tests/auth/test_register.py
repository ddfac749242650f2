from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from genai_service.models.user import User
from genai_service.runtime import runtime_of
from genai_service.settings import Settings
from tests.identity import PASSWORD, settings_with_auth, unique_email


async def test_register_returns_the_user_without_any_password(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    email = unique_email("new")
    response = await client.post(
        "/api/auth/register",
        json={"email": email, "password": PASSWORD, "full_name": "New Person"},
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "id", "email", "full_name", "role", "is_active", "is_anonymous", "created_at"
    }  # fmt: skip
    assert body["email"] == email
    assert (body["role"], body["is_active"], body["is_anonymous"]) == ("user", True, False)
    assert PASSWORD not in response.text
    async with runtime_of(app).sessionmaker() as session:
        user = (await session.execute(select(User).where(User.email == email))).scalar_one()
    assert user.hashed_password is not None
    assert user.hashed_password.startswith("$argon2id$")
    assert user.hashed_password not in response.text


async def test_register_then_log_in(client: httpx.AsyncClient) -> None:
    email = unique_email()
    assert (
        await client.post("/api/auth/register", json={"email": email, "password": PASSWORD})
    ).status_code == 201
    response = await client.post("/api/auth/token", data={"username": email, "password": PASSWORD})
    assert response.status_code == 200


async def test_email_is_stored_in_lower_case_and_duplicates_are_refused_in_any_case(
    client: httpx.AsyncClient,
) -> None:
    email = unique_email("Mixed.Case").replace("example.com", "Example.COM")
    first = await client.post("/api/auth/register", json={"email": email, "password": PASSWORD})
    assert first.status_code == 201
    assert first.json()["email"] == email.lower()
    for variant in (email, email.lower(), email.upper()):
        again = await client.post(
            "/api/auth/register", json={"email": variant, "password": PASSWORD}
        )
        assert again.status_code == 409, variant
        assert again.headers["content-type"] == "application/problem+json"
        assert again.json()["detail"] == "An account with this email already exists."


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("Short1", "Password must be at least 8 characters long"),
        ("NoDigitsHere", "Password must contain at least one digit"),
        ("no-upper-1", "Password must contain at least one uppercase letter"),
        ("Aa1" + "b" * 126, "Password must be at most 128 characters long"),
    ],
)
async def test_each_policy_rule_is_named_in_the_422(
    client: httpx.AsyncClient, password: str, rule: str
) -> None:
    response = await client.post(
        "/api/auth/register", json={"email": unique_email(), "password": password}
    )
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [(e["field"], e["message"]) for e in errors] == [("password", rule)]
    assert password not in response.text


async def test_every_broken_rule_is_listed_not_just_the_first(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/auth/register", json={"email": unique_email(), "password": "abc"}
    )
    assert response.status_code == 422
    body = response.json()
    assert sorted(e["type"] for e in body["errors"]) == [
        "password_no_digit",
        "password_no_uppercase",
        "password_too_short",
    ]
    for rule in ("at least 8 characters", "at least one digit", "at least one uppercase letter"):
        assert rule in body["detail"]


@pytest.mark.parametrize("email", ["not-an-email", "a@", "@example.com", ""])
async def test_invalid_email_is_422(client: httpx.AsyncClient, email: str) -> None:
    response = await client.post("/api/auth/register", json={"email": email, "password": PASSWORD})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "email"


async def test_nobody_can_register_as_the_anonymous_user(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/auth/register",
        json={"email": "anonymous@genai-service.local", "password": PASSWORD},
    )
    assert response.status_code in {409, 422}


class TestClosedRegistration:
    @pytest.fixture
    def settings(self, tmp_path: Path, database_url: str) -> Settings:
        return settings_with_auth(tmp_path, database_url, registration_enabled=False)

    async def test_registration_can_be_closed(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/api/auth/register", json={"email": unique_email(), "password": PASSWORD}
        )
        assert response.status_code == 403
