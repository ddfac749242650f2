from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from genai_service.app import create_app
from genai_service.auth.throttle import InMemoryFailureWindow
from genai_service.settings import RedisSettings, Settings
from tests.conftest import make_fake_models
from tests.identity import (
    PASSWORD,
    WRONG_PASSWORD,
    Account,
    client_at,
    insert_user,
    login,
    settings_with_auth,
    unique_email,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_hit_is_counted_while_under_the_limit_and_refused_at_it() -> None:
    clock = FakeClock()
    window = InMemoryFailureWindow(limit=3, window=60, clock=clock)
    for _ in range(3):
        assert await window.hit("k") == 0
        clock.now += 10
    # Attempts at 1000, 1010, 1020; now 1030: the oldest leaves the window at 1060.
    assert await window.hit("k") == pytest.approx(30)
    clock.now = 1060.5
    assert await window.hit("k") == 0  # the refused hit was not counted
    assert await window.hit("k") > 0
    assert await window.hit("other") == 0


async def test_forgive_takes_back_the_newest_attempt_and_clear_all() -> None:
    window = InMemoryFailureWindow(limit=2, window=60, clock=FakeClock())
    await window.hit("k")
    await window.hit("k")
    assert await window.hit("k") > 0
    await window.forgive("k")
    assert await window.hit("k") == 0
    await window.clear("k")
    assert await window.hit("k") == 0
    assert await window.hit("k") == 0
    await window.forgive("unknown")  # nothing to take back


async def test_memory_is_bounded() -> None:
    window = InMemoryFailureWindow(limit=1, window=60, clock=FakeClock(), max_keys=2)
    for key in ("a", "b", "c"):
        await window.hit(key)
    assert await window.hit("a") == 0  # evicted, oldest first
    assert await window.hit("c") > 0


@pytest.fixture
async def elsewhere(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_at(app, "198.51.100.20") as client:
        yield client


@pytest.fixture
def settings(tmp_path: Path, database_url: str, shared_state: RedisSettings) -> Settings:
    """The windows in the process, and on Redis."""
    return settings_with_auth(
        tmp_path,
        database_url,
        login_failures_per_account_and_client=3,
        login_failures_per_client=5,
        login_failure_window_seconds=300,
    ).model_copy(update={"redis": shared_state})


async def test_repeated_failures_for_one_account_get_429(
    client: httpx.AsyncClient, alice: Account
) -> None:
    for _ in range(3):
        assert (await login(client, alice.email, WRONG_PASSWORD)).status_code == 401
    blocked = await login(client, alice.email, PASSWORD)  # even the right password waits
    assert blocked.status_code == 429
    assert 0 < int(blocked.headers["retry-after"]) <= 300
    assert blocked.headers["content-type"] == "application/problem+json"


async def test_unknown_accounts_are_throttled_alike(client: httpx.AsyncClient) -> None:
    email = unique_email("nobody")
    statuses = [(await login(client, email, WRONG_PASSWORD)).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


async def test_a_success_resets_the_account_count(
    client: httpx.AsyncClient, alice: Account
) -> None:
    for _ in range(2):
        await login(client, alice.email, WRONG_PASSWORD)
    assert (await login(client, alice.email)).status_code == 200
    for _ in range(2):
        assert (await login(client, alice.email, WRONG_PASSWORD)).status_code == 401


async def test_successes_do_not_count_against_the_client(
    client: httpx.AsyncClient, alice: Account
) -> None:
    for _ in range(8):  # more than the client's limit of 5
        assert (await login(client, alice.email)).status_code == 200


async def test_one_client_guessing_many_accounts_gets_429(
    client: httpx.AsyncClient, elsewhere: httpx.AsyncClient, alice: Account
) -> None:
    for _ in range(5):
        response = await login(client, unique_email("guess"), WRONG_PASSWORD)
        assert response.status_code == 401
    blocked = await login(client, alice.email)
    assert blocked.status_code == 429
    assert "retry-after" in blocked.headers
    assert (await login(elsewhere, alice.email)).status_code == 200


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_optional_account_window_counts_every_address(
    tmp_path: Path, database_url: str
) -> None:
    settings = settings_with_auth(
        tmp_path,
        database_url,
        login_failures_per_account_and_client=2,
        login_failures_per_account=3,
    )
    app = create_app(settings, models=make_fake_models())
    async with LifespanManager(app):
        email = unique_email("target")
        await insert_user(app, email)
        addresses = ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
        statuses = []
        for address in addresses:
            async with client_at(app, address) as client:
                for _ in range(2):
                    statuses.append((await login(client, email, WRONG_PASSWORD)).status_code)
        # Two addresses fill the account's window of 3; everyone is refused now.
        assert statuses == [401, 401, 401, 429, 429, 429]
        async with client_at(app, "203.0.113.9") as owner:
            assert (await login(owner, email)).status_code == 429
