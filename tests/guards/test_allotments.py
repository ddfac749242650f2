"""A caller far from its budget is served from an allotment — tokens its process reserved ahead,
drawn in memory, charged in batches — and still never passes the budget: over real HTTP to a
real uvicorn, with the official `openai` client, on both databases, in one process and two, and
with a process killed while it holds an allotment."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from genai_service.guards.allotments import SMALLEST_SHARE
from genai_service.settings import LimitsSettings, Settings
from tests.conftest import PRODUCTION_SECRET, make_settings
from tests.guards.live import Budgeted, second_server, serving_budgeted
from tests.guards.test_overshoot import (
    assert_refused_for_quota,
    chat_completion,
    outcome,
    split,
)
from tests.polling import wait_until

BUDGET = 20_000
PER_CALL = 2 + 60
"""A prompt of two tokens and `max_tokens` 60, all of it used (the scripted reply is longer)."""
ALLOTMENT = BUDGET // SMALLEST_SHARE
"""625 tokens: ten calls' worth, so calls draw on allotments rather than reserve each."""
CALLS = 400
"""More than the budget holds (322 calls)."""
LEASE_SECONDS = 1.0


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


async def usage_day(budgeted: Budgeted) -> tuple[int, int]:
    async with httpx.AsyncClient(base_url=budgeted.base_url) as http:
        me = (await http.get("/api/usage/me", headers=budgeted.user.headers)).json()
    return me["day"]["used"], me["day"]["reserved"]


async def many_calls(
    clients: list[openai.AsyncOpenAI],
) -> tuple[list[int], list[openai.RateLimitError]]:
    """`CALLS` chat completions, 50 at a time, spread over `clients`."""
    gate = asyncio.Semaphore(50)

    async def call(index: int) -> int:
        async with gate:
            return await chat_completion(clients[index % len(clients)], index)

    outcomes = await asyncio.gather(
        *(outcome(asyncio.ensure_future(call(i))) for i in range(CALLS))
    )
    return split(list(outcomes))


async def test_calls_draw_on_an_allotment_and_usage_reads_their_last_call(
    budgeted: Budgeted,
) -> None:
    async with budgeted.openai() as client:
        for index in range(10):
            assert await chat_completion(client, index) == PER_CALL
    # Ten calls fitted in one allotment: the counter holds what it has left, not a call each.
    assert await usage_day(budgeted) == (10 * PER_CALL, ALLOTMENT - 10 * PER_CALL)
    state = budgeted.state()
    assert (state.used, state.ledger_tokens, state.ledger_calls) == (620, 620, 10)
    assert state.reservations == 1
    # Unused for a while, the allotment is given back.
    await wait_until(lambda: budgeted.state().exact, within=15)
    assert budgeted.state().used == 10 * PER_CALL


async def test_concurrent_calls_served_from_allotments_never_pass_the_budget(
    budgeted: Budgeted,
) -> None:
    async with budgeted.openai() as client:
        accepted, refused = await many_calls([client])
    assert_refused_for_quota(refused)
    assert set(accepted) == {PER_CALL}
    # Near the limit calls are reserved one by one, and what allotments held is given back:
    # the whole budget is used, less than a call's worth left.
    assert len(accepted) == BUDGET // PER_CALL
    await wait_until(lambda: budgeted.state().exact, within=15)
    state = budgeted.state()
    assert state.used == sum(accepted) == state.ledger_tokens == state.rollup_tokens
    assert state.used <= BUDGET


async def test_two_processes_holding_allotments_share_one_budget(
    budgeted: Budgeted, settings: Settings, tmp_path: Path
) -> None:
    other = second_server(settings, tmp_path / "second")
    other.start()
    try:
        async with budgeted.openai() as here, budgeted.openai(other.base_url) as there:
            accepted, refused = await many_calls([here, there])
    finally:
        other.stop()  # gives back what it held
    assert_refused_for_quota(refused)
    assert set(accepted) == {PER_CALL}
    # Either process may refuse while the other holds the last tokens ahead: never more than
    # the budget, and at most an allotment short of it.
    assert BUDGET - ALLOTMENT - PER_CALL < sum(accepted) <= BUDGET
    await wait_until(lambda: budgeted.state().exact, within=15)
    state = budgeted.state()
    assert state.used == sum(accepted) == state.ledger_tokens == state.rollup_tokens


async def test_a_process_killed_holding_an_allotment_is_charged_it_in_full_once(
    budgeted: Budgeted, settings: Settings, tmp_path: Path
) -> None:
    other = second_server(
        settings,
        tmp_path / "killed",
        GENAI_LIMITS__RESERVATION_LEASE_SECONDS=str(LEASE_SECONDS),
    )
    other.start()
    try:
        async with budgeted.openai(other.base_url) as there:
            for index in range(3):
                assert await chat_completion(there, index) == PER_CALL
        other.kill()
    finally:
        other.stop()
    # What its calls used is not lost: the allotment's tokens are charged whole, as one
    # interrupted row for what was not written, and nothing twice.
    await wait_until(lambda: "interrupted" in budgeted.state().statuses, within=15)
    state = budgeted.state()
    assert state.exact
    assert state.used == ALLOTMENT
    assert state.statuses["interrupted"] == 1


async def test_a_lowered_limit_retires_the_allotment_taken_under_the_old_one(
    budgeted: Budgeted,
) -> None:
    async with budgeted.openai() as client:
        assert await chat_completion(client, 0) == PER_CALL
        # Room for half a call more: the allotment, which holds nine, may not serve it.
        budgeted.set_tokens_per_day(PER_CALL + PER_CALL // 2)
        with pytest.raises(openai.RateLimitError):
            await chat_completion(client, 1)
    state = budgeted.state()
    assert state.exact
    assert state.used == PER_CALL
