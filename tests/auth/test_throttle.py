from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from genai_service.auth.throttle import InMemoryFailureWindow
from genai_service.settings import Settings
from tests.identity import PASSWORD, Account, login, settings_with_auth, unique_email


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_sliding_window_blocks_at_the_limit_and_forgets_old_failures() -> None:
    clock = FakeClock()
    window = InMemoryFailureWindow(limit=3, window=60, clock=clock)
    for _ in range(2):
        await window.add_failure("k")
        clock.now += 10
    assert await window.retry_after("k") == 0
    await window.add_failure("k")  # failures at 1000, 1010, 1020
    assert await window.retry_after("k") == pytest.approx(40)  # until 1000 + 60
    clock.now = 1060.5
    assert await window.retry_after("k") == 0
    assert await window.retry_after("other") == 0


async def test_clear_forgets_a_key() -> None:
    window = InMemoryFailureWindow(limit=1, window=60, clock=FakeClock())
    await window.add_failure("k")
    assert await window.retry_after("k") > 0
    await window.clear("k")
    assert await window.retry_after("k") == 0


async def test_memory_is_bounded() -> None:
    window = InMemoryFailureWindow(limit=1, window=60, clock=FakeClock(), max_keys=2)
    for key in ("a", "b", "c"):
        await window.add_failure(key)
    assert await window.retry_after("a") == 0  # evicted, oldest first
    assert await window.retry_after("c") > 0


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return settings_with_auth(
        tmp_path,
        database_url,
        login_failures_per_account=3,
        login_failures_per_client=5,
        login_failure_window_seconds=300,
    )


async def test_repeated_failures_for_one_account_get_429(
    client: httpx.AsyncClient, alice: Account
) -> None:
    for _ in range(3):
        assert (await login(client, alice.email, "Wrong-Password-1")).status_code == 401
    blocked = await login(client, alice.email, PASSWORD)  # even the right password waits
    assert blocked.status_code == 429
    assert 0 < int(blocked.headers["retry-after"]) <= 300
    assert blocked.headers["content-type"] == "application/problem+json"


async def test_unknown_accounts_are_throttled_alike(client: httpx.AsyncClient) -> None:
    email = unique_email("nobody")
    statuses = [(await login(client, email, "Wrong-Password-1")).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


async def test_a_success_resets_the_account_count(
    client: httpx.AsyncClient, alice: Account
) -> None:
    for _ in range(2):
        await login(client, alice.email, "Wrong-Password-1")
    assert (await login(client, alice.email)).status_code == 200
    for _ in range(2):
        assert (await login(client, alice.email, "Wrong-Password-1")).status_code == 401


async def test_one_client_guessing_many_accounts_gets_429(
    client: httpx.AsyncClient, alice: Account
) -> None:
    for _ in range(5):
        response = await login(client, unique_email("guess"), "Wrong-Password-1")
        assert response.status_code == 401
    blocked = await login(client, alice.email)
    assert blocked.status_code == 429
    assert "retry-after" in blocked.headers
