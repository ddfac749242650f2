"""Anonymous mode: credential-less requests act as the built-in `anonymous` user, or get 401."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from genai_service.migrations import upgrade_database
from genai_service.models.user import ANONYMOUS_EMAIL, ANONYMOUS_USER_ID, User
from genai_service.runtime import runtime_of
from genai_service.settings import Settings
from tests.conftest import PRODUCTION_SECRET
from tests.identity import Account, settings_with_auth


def test_anonymous_mode_defaults_by_environment() -> None:
    development = Settings(_env_file=None)
    production = Settings(_env_file=None, env="production", secret_key=PRODUCTION_SECRET)
    assert development.allows_anonymous is True
    assert production.allows_anonymous is False
    on_in_production = Settings(
        _env_file=None,
        env="production",
        secret_key=PRODUCTION_SECRET,
        auth={"allow_anonymous": True},
    )
    assert on_in_production.allows_anonymous is True
    assert Settings(_env_file=None, auth={"allow_anonymous": False}).allows_anonymous is False


def test_anonymous_mode_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENAI_AUTH__ALLOW_ANONYMOUS", "false")
    assert Settings(_env_file=None).allows_anonymous is False


async def test_the_anonymous_user_is_a_real_row_created_once(app: FastAPI) -> None:
    await upgrade_database(runtime_of(app).engine)  # a second upgrade changes nothing
    async with runtime_of(app).sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(User).where(User.email == ANONYMOUS_EMAIL)
        )
        user = await session.get(User, ANONYMOUS_USER_ID)
    assert count == 1
    assert user is not None
    assert user.hashed_password is None
    assert user.role == "user"


class TestOn:
    async def test_chat_just_works(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/chat", params={"prompt": "hello"})
        assert response.status_code == 200
        assert response.json()["statement"]

    async def test_v1_just_works(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/v1/models")).status_code == 200

    async def test_me_is_the_anonymous_user(self, client: httpx.AsyncClient) -> None:
        body = (await client.get("/api/users/me")).json()
        assert body["email"] == ANONYMOUS_EMAIL
        assert body["is_anonymous"] is True
        assert body["role"] == "user"

    async def test_invalid_credentials_never_fall_back_to_anonymous(
        self, client: httpx.AsyncClient
    ) -> None:
        for credential in ("anonymous-ish", "Anonymous", "gsk_unknown", "e30.e30.e30"):
            response = await client.get("/chat", headers={"Authorization": f"Bearer {credential}"})
            assert response.status_code == 401, credential

    async def test_the_openai_client_asks_for_anonymous_access_explicitly(
        self, app: FastAPI
    ) -> None:
        """The SDK insists on an API key; `anonymous` stands for sending none."""
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
            sdk = openai.AsyncOpenAI(
                base_url="http://testserver/v1", api_key="anonymous", http_client=http
            )
            assert [model.id async for model in sdk.models.list()]

    async def test_the_anonymous_user_cannot_manage_keys_or_its_account(
        self, client: httpx.AsyncClient
    ) -> None:
        assert (await client.post("/api/keys", json={"name": "k"})).status_code == 401
        assert (await client.get("/api/keys")).status_code == 401
        assert (await client.patch("/api/users/me", json={"full_name": "x"})).status_code == 401
        assert (await client.get("/api/users")).status_code == 401

    async def test_a_signed_in_caller_is_themselves(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        body = (await client.get("/api/users/me", headers=alice.headers)).json()
        assert (body["email"], body["is_anonymous"]) == (alice.email, False)

    async def test_deactivating_the_anonymous_user_turns_anonymous_access_off(
        self, client: httpx.AsyncClient, admin: Account
    ) -> None:
        response = await client.patch(
            f"/api/users/{ANONYMOUS_USER_ID}", json={"is_active": False}, headers=admin.headers
        )
        assert response.status_code == 200
        assert (await client.get("/chat")).status_code == 401
        promote = await client.patch(
            f"/api/users/{ANONYMOUS_USER_ID}", json={"role": "admin"}, headers=admin.headers
        )
        assert promote.status_code == 409


class TestOff:
    @pytest.fixture
    def settings(self, tmp_path: Path, database_url: str) -> Settings:
        return settings_with_auth(tmp_path, database_url, allow_anonymous=False)

    @pytest.mark.parametrize(
        ("method", "path"),
        [("GET", "/chat"), ("GET", "/v1/models"), ("POST", "/v1/chat/completions"),
         ("GET", "/api/users/me"), ("GET", "/api/keys")],
    )  # fmt: skip
    async def test_missing_credentials_are_401_with_a_bearer_challenge(
        self, client: httpx.AsyncClient, method: str, path: str
    ) -> None:
        response = await client.request(method, path)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"

    async def test_public_routes_stay_public(self, client: httpx.AsyncClient) -> None:
        for path in ("/", "/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"):
            assert (await client.get(path)).status_code == 200, path

    async def test_credentials_work(self, client: httpx.AsyncClient, alice: Account) -> None:
        assert (await client.get("/chat", headers=alice.headers)).status_code == 200

    async def test_asking_for_anonymous_access_is_401(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/models", headers={"Authorization": "Bearer anonymous"})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
