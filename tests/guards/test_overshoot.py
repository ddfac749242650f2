"""Fifty calls at once against a 2,000-token daily budget, over real HTTP to a real uvicorn,
with the official `openai` client where the surface is OpenAI's: the budget is never passed,
every refusal is a 429 `insufficient_quota` (a `budget-exceeded` problem outside `/v1`), and
the tokens the accepted responses report are exactly what the ledger and the counter hold.

Each chat call here uses all it reserves (the scripted reply is longer than `max_tokens`), so
the number of accepted calls is known exactly: a budget checked before and counted after would
let all fifty through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from genai_service.settings import Settings
from tests.conftest import FAKE_CHAT_MODEL, FAKE_EMBEDDING_MODEL, PRODUCTION_SECRET, make_settings
from tests.guards.live import Budgeted, second_server, serving_budgeted
from tests.identity import bearer

BUDGET = 2000
CALLS = 50
MAX_TOKENS = 60
CHAT_PROMPT = "hello there"
"""Two tokens to the scripted model: a chat call uses 2 + `MAX_TOKENS`."""
EMBEDDING_INPUT = " ".join(["budget"] * 40)
"""42 tokens to the fake embedding model (two special tokens)."""


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, secret_key=PRODUCTION_SECRET)


@pytest.fixture
def budgeted(settings: Settings) -> Iterator[Budgeted]:
    with serving_budgeted(settings, BUDGET) as served:
        yield served


def assert_refused_for_quota(refusals: list[openai.RateLimitError]) -> None:
    for refusal in refusals:
        assert refusal.status_code == 429
        assert (refusal.code, refusal.type) == ("insufficient_quota", "insufficient_quota")


async def chat_completion(client: openai.AsyncOpenAI, index: int) -> int:
    """The tokens the response reports; streamed for odd `index`."""
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [
        {"role": "user", "content": CHAT_PROMPT}
    ]
    if index % 2 == 0:
        completion = await client.chat.completions.create(
            model=FAKE_CHAT_MODEL, messages=messages, max_tokens=MAX_TOKENS
        )
        assert completion.usage is not None
        return completion.usage.total_tokens
    stream = await client.chat.completions.create(
        model=FAKE_CHAT_MODEL,
        messages=messages,
        max_tokens=MAX_TOKENS,
        stream=True,
        stream_options={"include_usage": True},
    )
    total = None
    async for chunk in stream:
        if chunk.usage is not None:
            total = chunk.usage.total_tokens
    assert total is not None
    return total


async def embedding(client: openai.AsyncOpenAI) -> int:
    response = await client.embeddings.create(model=FAKE_EMBEDDING_MODEL, input=EMBEDDING_INPUT)
    return response.usage.total_tokens


async def outcome(call: asyncio.Future[int] | asyncio.Task[int]) -> int | openai.RateLimitError:
    try:
        return await call
    except openai.RateLimitError as refusal:
        return refusal


def split(
    outcomes: list[int | openai.RateLimitError],
) -> tuple[list[int], list[openai.RateLimitError]]:
    accepted = [item for item in outcomes if isinstance(item, int)]
    refused = [item for item in outcomes if isinstance(item, openai.RateLimitError)]
    assert len(accepted) + len(refused) == len(outcomes)
    return accepted, refused


async def test_fifty_concurrent_chat_completions_never_pass_the_budget(
    budgeted: Budgeted,
) -> None:
    async with budgeted.openai() as client:
        outcomes = await asyncio.gather(
            *(outcome(asyncio.ensure_future(chat_completion(client, i))) for i in range(CALLS))
        )
    accepted, refused = split(list(outcomes))
    assert_refused_for_quota(refused)
    per_call = 2 + MAX_TOKENS
    assert set(accepted) == {per_call}
    assert len(accepted) == BUDGET // per_call
    state = budgeted.state()
    assert state.exact
    assert state.used == sum(accepted) == state.ledger_tokens == state.rollup_tokens
    assert state.used <= BUDGET


async def test_two_server_processes_share_one_budget(
    budgeted: Budgeted, settings: Settings, tmp_path: Path
) -> None:
    """Half the calls go to this process's server, half to another process on the database."""
    other = second_server(settings, tmp_path / "second")
    other.start()
    try:
        async with budgeted.openai() as here, budgeted.openai(other.base_url) as there:
            outcomes = await asyncio.gather(
                *(
                    outcome(asyncio.ensure_future(chat_completion(here if i % 4 < 2 else there, i)))
                    for i in range(CALLS)
                )
            )
    finally:
        other.stop()
    accepted, refused = split(list(outcomes))
    assert_refused_for_quota(refused)
    per_call = 2 + MAX_TOKENS
    assert set(accepted) == {per_call}
    assert len(accepted) == BUDGET // per_call
    state = budgeted.state()
    assert state.exact
    assert state.used == sum(accepted) == state.ledger_tokens == state.rollup_tokens
    assert state.used <= BUDGET


async def test_fifty_concurrent_turns_never_pass_the_budget(budgeted: Budgeted) -> None:
    async with httpx.AsyncClient(
        base_url=budgeted.base_url, headers=budgeted.user.headers, timeout=120
    ) as http:
        conversations = []
        for index in range(CALLS):
            # Titled: an untitled conversation's first reply is followed by a title call.
            created = await http.post("/api/conversations", json={"title": f"turn {index}"})
            conversations.append(created.json()["id"])

        async def turn(conversation_id: str) -> httpx.Response:
            return await http.post(
                f"/api/conversations/{conversation_id}/messages",
                json={"content": CHAT_PROMPT, "max_tokens": MAX_TOKENS},
            )

        responses = await asyncio.gather(*(turn(c) for c in conversations))
    accepted = []
    for response in responses:
        if response.status_code == 201:
            reply = response.json()["assistant_message"]
            accepted.append(reply["prompt_tokens"] + reply["completion_tokens"])
        else:
            assert response.status_code == 429, response.text
            assert response.json()["type"].endswith(":budget-exceeded")
    per_turn = accepted[0]
    assert set(accepted) == {per_turn}
    assert len(accepted) == BUDGET // per_turn
    state = budgeted.state()
    assert state.exact
    assert state.used == sum(accepted) == state.ledger_tokens
    assert state.used <= BUDGET


async def test_fifty_concurrent_chat_and_embedding_calls_never_pass_the_budget(
    budgeted: Budgeted,
) -> None:
    async with budgeted.openai() as client:
        calls = [
            asyncio.ensure_future(chat_completion(client, i) if i % 5 < 3 else embedding(client))
            for i in range(CALLS)
        ]
        outcomes = await asyncio.gather(*(outcome(call) for call in calls))
    accepted, refused = split(list(outcomes))
    assert_refused_for_quota(refused)
    assert refused
    assert set(accepted) == {2 + MAX_TOKENS, 42}
    state = budgeted.state()
    assert state.exact
    assert state.used == sum(accepted) == state.ledger_tokens
    # Every call uses what it reserved, so used + reserved only grew; a call was refused when
    # it did not fit, so at most one call's worth is left unused.
    assert BUDGET - (2 + MAX_TOKENS) < state.used <= BUDGET


def test_a_turn_that_can_never_fit_is_a_problem_with_retry_after(budgeted: Budgeted) -> None:
    headers = bearer(budgeted.user.access_token)
    created = httpx.post(
        f"{budgeted.base_url}/api/conversations", json={"title": "big"}, headers=headers
    )
    response = httpx.post(
        f"{budgeted.base_url}/api/conversations/{created.json()['id']}/messages",
        json={"content": "hi", "max_tokens": BUDGET},
        headers=headers,
    )
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["Retry-After"]) > 0
    assert response.json()["requested"] > BUDGET
