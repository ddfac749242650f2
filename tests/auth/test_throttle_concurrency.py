"""The login throttle under simultaneous guesses, with the default limits."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from genai_service.auth import service as auth_service
from genai_service.auth.passwords import verify_password
from genai_service.settings import Settings
from tests.identity import WRONG_PASSWORD, Account, client_at, login


@pytest.fixture
async def elsewhere(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_at(app, "198.51.100.20") as client:
        yield client


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The hashes argon2 verified a password against, one entry per verification."""
    seen: list[str | None] = []

    async def counting(password: str, hashed: str | None) -> tuple[bool, str | None]:
        seen.append(hashed)
        return await verify_password(password, hashed)

    monkeypatch.setattr(auth_service, "verify_password", counting)
    return seen


async def test_simultaneous_guesses_beyond_the_limit_are_never_verified(
    client: httpx.AsyncClient,
    elsewhere: httpx.AsyncClient,
    alice: Account,
    settings: Settings,
    verifications: list[str | None],
) -> None:
    limit = settings.auth.login_failures_per_account_and_client
    responses = await asyncio.gather(
        *(login(client, alice.email, WRONG_PASSWORD) for _ in range(50))
    )
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {401: limit, 429: 50 - limit}
    assert len(verifications) == limit
    assert all(0 < int(r.headers["retry-after"]) <= 900 for r in responses if r.status_code == 429)
    # The guesser's address stays refused, even with the right password ...
    assert (await login(client, alice.email)).status_code == 429
    # ... while the owner, elsewhere, still logs in.
    assert (await login(elsewhere, alice.email)).status_code == 200
    assert len(verifications) == limit + 1


async def test_a_burst_then_the_right_password_from_the_same_address_is_refused(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await asyncio.gather(*(login(client, alice.email, WRONG_PASSWORD) for _ in range(44)))
    response = await login(client, alice.email)
    assert response.status_code == 429
    assert "access_token" not in response.text
