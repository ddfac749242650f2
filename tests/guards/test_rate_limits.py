"""Requests and tokens per minute on the OpenAI surface: OpenAI's `x-ratelimit-*` headers on
every model call, streamed or not; 429 in OpenAI's shape with `Retry-After` when a limit is
reached; a key's own limits held beside its owner's; none of it for callers without limits nor
for routes that call no model."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from fastapi import FastAPI

from tests.conftest import FAKE_EMBEDDING_MODEL, client_for, make_settings
from tests.guards.support import (
    GATED_CHAT_MODEL,
    chat,
    gated_model,
    rate_limit_headers,
    seconds_of,
    set_limits,
    started_app,
)
from tests.identity import Account, bearer, new_account, new_api_key
from tests.polling import wait_until

COMPLETIONS = "/v1/chat/completions"


async def test_requests_per_minute_answer_with_openai_headers_then_429(
    app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    await set_limits(app, user_id=alice.id, requests_per_minute=3)
    remaining, resets = [], []
    for _ in range(3):
        response = await client.post(COMPLETIONS, json=chat(), headers=alice.headers)
        assert response.status_code == 200
        assert response.headers["x-ratelimit-limit-requests"] == "3"
        remaining.append(response.headers["x-ratelimit-remaining-requests"])
        resets.append(seconds_of(response.headers["x-ratelimit-reset-requests"]))
    assert remaining == ["2", "1", "0"]
    # A bucket refilled continuously: a request comes back every 20 s, all of them in 60 s.
    assert 19 < resets[0] <= 20
    assert 39 < resets[1] <= 40
    assert 59 < resets[2] <= 60
    assert "x-ratelimit-limit-tokens" not in response.headers  # no tokens limit
    refused = await client.post(COMPLETIONS, json=chat(), headers=alice.headers)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "20"
    assert 19_000 < int(refused.headers["retry-after-ms"]) <= 20_000
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
    assert "3 model calls per minute (requests_per_minute)" in error["message"]


async def test_tokens_per_minute_hold_what_a_call_may_use_and_get_the_rest_back(
    app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    await set_limits(app, user_id=alice.id, tokens_per_minute=100)
    model = gated_model(app)
    # "hello there" is 2 tokens: with max_tokens 90 a call holds 92 while it runs.
    held = asyncio.create_task(
        client.post(
            COMPLETIONS, json=chat(model=GATED_CHAT_MODEL, max_tokens=90), headers=alice.headers
        )
    )
    await wait_until(lambda: model.in_flight == 1)
    refused = await client.post(COMPLETIONS, json=chat(max_tokens=60), headers=alice.headers)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("tokens", "rate_limit_exceeded")
    assert "100 tokens per minute (tokens_per_minute)" in error["message"]
    assert "holds up to 62" in error["message"]
    assert refused.headers["x-ratelimit-limit-tokens"] == "100"
    assert refused.headers["x-ratelimit-remaining-tokens"] == "8"
    assert 30 <= int(refused.headers["retry-after"]) <= 33
    model.gate.set()
    done = await held
    assert done.status_code == 200
    assert done.json()["usage"]["total_tokens"] == 6
    # The 86 tokens it held but did not use are back: 100 - 6 used - 62 held now.
    admitted = await client.post(COMPLETIONS, json=chat(max_tokens=60), headers=alice.headers)
    assert admitted.status_code == 200
    assert 32 <= int(admitted.headers["x-ratelimit-remaining-tokens"]) <= 34
    assert admitted.headers["x-ratelimit-limit-tokens"] == "100"


async def test_a_call_that_can_never_fit_is_told_not_to_retry(
    app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    await set_limits(app, user_id=alice.id, tokens_per_minute=100)
    refused = await client.post(COMPLETIONS, json=chat(max_tokens=200), headers=alice.headers)
    assert refused.status_code == 429
    assert refused.headers["x-should-retry"] == "false"
    assert "retry-after" not in refused.headers
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("tokens", "rate_limit_exceeded")
    assert "ask for fewer tokens" in error["message"]


async def test_a_keys_own_limits_hold_beside_its_owners(
    app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    await set_limits(app, user_id=alice.id, requests_per_minute=3)
    limited = await new_api_key(client, alice, "limited")
    await set_limits(app, api_key_id=limited["id"], requests_per_minute=1)
    plain = await new_api_key(client, alice, "plain")

    async def call(credential: str) -> httpx.Response:
        return await client.post(COMPLETIONS, json=chat(), headers=bearer(credential))

    by_key = await call(limited["secret"])
    assert by_key.status_code == 200
    # The binding limit is named: the key's, with nothing left.
    assert by_key.headers["x-ratelimit-limit-requests"] == "1"
    assert by_key.headers["x-ratelimit-remaining-requests"] == "0"
    refused = await call(limited["secret"])
    assert refused.status_code == 429
    assert refused.json()["error"]["message"].startswith("This API key may make 1 model calls")
    # Refused by its key, the call took nothing from the owner's 3.
    by_owner = await call(alice.access_token)
    assert by_owner.headers["x-ratelimit-remaining-requests"] == "1"
    by_plain_key = await call(plain["secret"])
    assert by_plain_key.status_code == 200
    assert by_plain_key.headers["x-ratelimit-limit-requests"] == "3"
    assert by_plain_key.headers["x-ratelimit-remaining-requests"] == "0"
    refused_by_owner = await call(plain["secret"])
    assert refused_by_owner.status_code == 429
    assert refused_by_owner.json()["error"]["message"].startswith("Your account may make 3")


async def test_embeddings_are_limited_and_carry_the_headers(
    app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    await set_limits(app, user_id=alice.id, requests_per_minute=1, tokens_per_minute=1000)
    body = {"model": FAKE_EMBEDDING_MODEL, "input": ["a b c", "d"]}
    response = await client.post("/v1/embeddings", json=body, headers=alice.headers)
    assert response.status_code == 200
    tokens = response.json()["usage"]["total_tokens"]
    assert rate_limit_headers(response) | {"x-ratelimit-reset-requests": "-"} == {
        "x-ratelimit-limit-requests": "1",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "-",
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": str(1000 - tokens),
        "x-ratelimit-reset-tokens": response.headers["x-ratelimit-reset-tokens"],
    }
    refused = await client.post("/v1/embeddings", json=body, headers=alice.headers)
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "requests"


async def test_streams_carry_the_headers_before_their_first_chunk(
    app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    await set_limits(app, user_id=alice.id, requests_per_minute=10, tokens_per_minute=10_000)
    streamed = [
        (COMPLETIONS, chat(stream=True, max_tokens=20)),
        ("/v1/completions", {"model": "fake-chat", "prompt": "go on", "stream": True}),
        ("/v1/responses", {"model": "fake-chat", "input": "hello", "stream": True}),
    ]
    for index, (path, body) in enumerate(streamed):
        async with client.stream("POST", path, json=body, headers=alice.headers) as response:
            assert response.status_code == 200, path
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["x-ratelimit-remaining-requests"] == str(9 - index)
            assert int(response.headers["x-ratelimit-remaining-tokens"]) < 10_000
            await response.aread()
    whole = await client.post(
        "/v1/responses", json={"model": "fake-chat", "input": "hello"}, headers=alice.headers
    )
    assert whole.headers["x-ratelimit-remaining-requests"] == "6"


async def test_no_headers_without_limits_nor_on_routes_that_call_no_model(
    app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    free = await client.post(COMPLETIONS, json=chat(), headers=alice.headers)
    assert free.status_code == 200
    assert rate_limit_headers(free) == {}
    await set_limits(app, user_id=alice.id, requests_per_minute=5, tokens_per_minute=500)
    for path in ("/v1/models", "/v1/models/fake-chat"):
        listed = await client.get(path, headers=alice.headers)
        assert listed.status_code == 200
        assert rate_limit_headers(listed) == {}
    limited = await client.post(COMPLETIONS, json=chat(), headers=alice.headers)
    assert limited.headers["x-ratelimit-remaining-requests"] == "4"


async def test_browsers_may_read_the_headers(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, cors={"origins": ["https://app.example"]})
    async for app in started_app(settings):
        async with client_for(app) as client:
            alice = await new_account(app, client, "alice")
            await set_limits(app, user_id=alice.id, requests_per_minute=5)
            response = await client.post(
                COMPLETIONS,
                json=chat(),
                headers={"Origin": "https://app.example", **alice.headers},
            )
            exposed = {
                name.strip().lower()
                for name in response.headers["access-control-expose-headers"].split(",")
            }
            assert set(rate_limit_headers(response)) == {
                "x-ratelimit-limit-requests",
                "x-ratelimit-remaining-requests",
                "x-ratelimit-reset-requests",
            }
            assert {
                "retry-after",
                "retry-after-ms",
                *(
                    f"x-ratelimit-{what}-{kind}"
                    for what in ("limit", "remaining", "reset")
                    for kind in ("requests", "tokens")
                ),
            } <= exposed
