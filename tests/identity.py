"""Accounts for tests: factories and fixtures (loaded by the root conftest as a plugin).

`alice` and `bob` are ordinary users, `admin` an admin; each is logged in through the API and
carries its tokens. Accounts are inserted through the service (argon2 is slow on purpose), the
tokens come from the real `/api/auth/token`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from genai_service.models.user import Role
from genai_service.runtime import runtime_of
from genai_service.settings import AuthSettings, Settings
from genai_service.users.schemas import UserCreate
from genai_service.users.service import UserService

PASSWORD = "Correct-Horse-9"
WRONG_PASSWORD = "Wrong-Password-1"


@dataclass
class Account:
    id: str
    email: str
    password: str
    access_token: str = ""
    refresh_token: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.access_token)


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def unique_email(name: str = "user") -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}@example.com"


def settings_with_auth(tmp_path: Path, database_url: str, **auth: Any) -> Settings:
    """Test settings (as `tests.conftest.make_settings`) with these `auth` values."""
    return Settings(
        _env_file=None,
        data_dir=tmp_path / "data",
        database_url=database_url,
        auth=AuthSettings(**auth),
    )


def client_at(app: FastAPI, address: str) -> httpx.AsyncClient:
    """A client whose requests come from `address` (the peer address of the ASGI scope)."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def insert_user(
    app: FastAPI, email: str, *, password: str = PASSWORD, role: Role = Role.USER
) -> str:
    async with runtime_of(app).sessionmaker() as session:
        user = await UserService(session).create(
            UserCreate(email=email, password=password), role=role
        )
        await session.commit()
        return str(user.id)


async def login(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, **kwargs: Any
) -> httpx.Response:
    return await client.post(
        "/api/auth/token", data={"username": email, "password": password}, **kwargs
    )


async def logged_in(client: httpx.AsyncClient, account: Account) -> Account:
    response = await login(client, account.email, account.password)
    assert response.status_code == 200, response.text
    tokens = response.json()
    account.access_token = tokens["access_token"]
    account.refresh_token = tokens["refresh_token"]
    return account


async def new_account(
    app: FastAPI, client: httpx.AsyncClient, name: str = "user", *, role: Role = Role.USER
) -> Account:
    email = unique_email(name)
    user_id = await insert_user(app, email, role=role)
    return await logged_in(client, Account(id=user_id, email=email, password=PASSWORD))


async def new_api_key(
    client: httpx.AsyncClient, account: Account, name: str = "test"
) -> dict[str, Any]:
    response = await client.post("/api/keys", json={"name": name}, headers=account.headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def alice(app: FastAPI, client: httpx.AsyncClient) -> Account:
    return await new_account(app, client, "alice")


@pytest.fixture
async def bob(app: FastAPI, client: httpx.AsyncClient) -> Account:
    return await new_account(app, client, "bob")


@pytest.fixture
async def admin(app: FastAPI, client: httpx.AsyncClient) -> Account:
    return await new_account(app, client, "admin", role=Role.ADMIN)
