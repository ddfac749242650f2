"""However a call ends, its reservation is settled and the counters stay exact: a stream whose
client leaves is charged what it sent, a cancelled generation what it wrote, a failed provider
what it streamed before failing, and a call of a process killed mid-way is charged in full once
its lease runs out (swept by another process on the database), never twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from genai_service.settings import LimitsSettings, Settings
from tests.conftest import FAKE_CHAT_MODEL, PRODUCTION_SECRET, make_settings
from tests.guards.fake_model_server import FAILING_AFTER, FAILING_CHAT_MODEL
from tests.guards.live import Budgeted, second_server, serving_budgeted
from tests.polling import wait_until

BUDGET = 2000
MAX_TOKENS = 100
PROMPT_TOKENS = 2
RESERVED = PROMPT_TOKENS + MAX_TOKENS
LEASE_SECONDS = 1.0
TURN_MAX_TOKENS = 190
"""Nearly the scripted reply (200 words, 20 ms apart): seconds for the cancel to arrive."""


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path,
        database_url,
        secret_key=PRODUCTION_SECRET,
        limits=LimitsSettings(reservation_lease_seconds=LEASE_SECONDS),
    )


@pytest.fixture
def budgeted(settings: Settings) -> Iterator[Budgeted]:
    with serving_budgeted(settings, BUDGET) as served:
        yield served


def streamed_chat(model: str = FAKE_CHAT_MODEL) -> dict[str, object]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": "hello there"}],
        "max_tokens": MAX_TOKENS,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def read_words(response: httpx.Response, count: int) -> None:
    """Read until `count` words of the reply arrived (the call is under way, and reserved)."""
    seen = 0
    async for line in response.aiter_lines():
        if not line.startswith("data: {"):
            continue
        choices = json.loads(line.removeprefix("data: "))["choices"]
        if choices and choices[0]["delta"].get("content"):
            seen += 1
        if seen == count:
            return
    raise AssertionError("the stream ended early")


async def test_a_stream_whose_client_leaves_is_charged_what_it_sent(budgeted: Budgeted) -> None:
    async with (
        httpx.AsyncClient(base_url=budgeted.base_url, headers=budgeted.user.headers) as http,
        http.stream("POST", "/v1/chat/completions", json=streamed_chat()) as response,
    ):
        assert response.status_code == 200
        await read_words(response, 5)
        assert budgeted.state().reserved == RESERVED
    await wait_until(lambda: budgeted.state().statuses == {"cancelled": 1})
    state = budgeted.state()
    assert state.exact
    assert PROMPT_TOKENS + 5 <= state.used < RESERVED


async def test_a_cancelled_generation_is_charged_what_it_wrote(budgeted: Budgeted) -> None:
    async with httpx.AsyncClient(base_url=budgeted.base_url, headers=budgeted.user.headers) as http:
        created = await http.post("/api/conversations", json={"title": "to cancel"})
        turn = {"content": "hello there", "max_tokens": TURN_MAX_TOKENS, "stream": True}
        async with http.stream(
            "POST", f"/api/conversations/{created.json()['id']}/messages", json=turn
        ) as response:
            assert response.status_code == 200
            generation_id = response.headers["X-Generation-ID"]
            async for line in response.aiter_lines():
                if line.startswith("event: delta"):
                    break
            reserved = budgeted.state().reserved
            assert reserved > TURN_MAX_TOKENS
            cancelled = await http.post(f"/api/generations/{generation_id}/cancel")
            assert cancelled.status_code == 200, cancelled.text
        await wait_until(lambda: budgeted.state().statuses == {"cancelled": 1})
        generation = (await http.get(f"/api/generations/{generation_id}")).json()
    state = budgeted.state()
    assert state.exact
    assert generation["status"] == "cancelled"
    assert 0 < state.used < reserved


async def test_a_failed_provider_is_charged_what_it_streamed(budgeted: Budgeted) -> None:
    async with (
        httpx.AsyncClient(base_url=budgeted.base_url, headers=budgeted.user.headers) as http,
        http.stream(
            "POST", "/v1/chat/completions", json=streamed_chat(FAILING_CHAT_MODEL)
        ) as response,
    ):
        events = [line async for line in response.aiter_lines() if line.startswith("data: ")]
    assert json.loads(events[-1].removeprefix("data: "))["error"]["code"] == "bad_gateway"
    state = budgeted.state()
    assert state.exact
    assert state.statuses == {"failed": 1}
    assert state.used == PROMPT_TOKENS + FAILING_AFTER


async def test_a_killed_process_is_charged_in_full_once_its_lease_runs_out(
    budgeted: Budgeted, settings: Settings, tmp_path: Path
) -> None:
    other = second_server(
        settings,
        tmp_path / "killed",
        GENAI_LIMITS__RESERVATION_LEASE_SECONDS=str(LEASE_SECONDS),
    )
    other.start()
    try:
        async with (
            httpx.AsyncClient(base_url=other.base_url, headers=budgeted.user.headers) as http,
            http.stream("POST", "/v1/chat/completions", json=streamed_chat()) as response,
        ):
            assert response.status_code == 200
            await read_words(response, 3)
            other.kill()
    finally:
        other.stop()
    held = budgeted.state()
    assert (held.reserved, held.reservations, held.ledger_calls) == (RESERVED, 1, 0)
    await wait_until(lambda: budgeted.state().statuses == {"interrupted": 1})
    state = budgeted.state()
    assert state.exact
    assert state.used == RESERVED
