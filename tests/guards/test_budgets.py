"""Budgets as a caller meets them: what a call reserves and is charged, the 429 that refuses a
call that does not fit (OpenAI's `insufficient_quota` under `/v1`), keys' own budgets, and what
`/api/usage/me` and the admins' reports show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from genai_service.runtime import runtime_of
from tests.conftest import FAKE_CHAT_MODEL, FAKE_EMBEDDING_MODEL
from tests.guards.budget_support import budget_state, set_user_limits
from tests.identity import Account, bearer, new_api_key


def chat(content: str = "hello there", max_tokens: int = 10) -> dict[str, Any]:
    return {
        "model": FAKE_CHAT_MODEL,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens,
    }


async def complete(
    client: httpx.AsyncClient, headers: dict[str, str], max_tokens: int = 10
) -> httpx.Response:
    return await client.post(
        "/v1/chat/completions", json=chat(max_tokens=max_tokens), headers=headers
    )


async def test_a_call_is_charged_what_it_used_and_shown_in_usage(
    app: FastAPI, client: httpx.AsyncClient, admin: Account, alice: Account
) -> None:
    await set_user_limits(client, admin, alice, tokens_per_day=100, tokens_per_month=1000)
    response = await client.post("/v1/chat/completions", json=chat(), headers=alice.headers)
    assert response.status_code == 200, response.text
    usage = response.json()["usage"]
    # "hello there" is two tokens to the fake model; its reply "You said: hello there" four.
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (2, 4)
    embedded = await client.post(
        "/v1/embeddings",
        json={"model": FAKE_EMBEDDING_MODEL, "input": "one two"},
        headers=alice.headers,
    )
    assert embedded.status_code == 200, embedded.text
    embedding_tokens = embedded.json()["usage"]["prompt_tokens"]

    me = (await client.get("/api/usage/me", headers=alice.headers)).json()
    spent = usage["total_tokens"] + embedding_tokens
    today = datetime.now(UTC).date()
    assert me["day"] == {
        "period": "day",
        "starts_at": f"{today.isoformat()}T00:00:00Z",
        "resets_at": f"{(today + timedelta(days=1)).isoformat()}T00:00:00Z",
        "used": spent,
        "reserved": 0,
        "limit": 100,
        "remaining": 100 - spent,
    }
    assert (me["month"]["used"], me["month"]["remaining"]) == (spent, 1000 - spent)
    assert me["key"] is None
    by_model = {entry["model"]: entry for entry in me["models"]}
    assert by_model[FAKE_CHAT_MODEL]["day"] == {
        "calls": 1,
        "prompt_tokens": 2,
        "completion_tokens": 4,
        "total_tokens": 6,
    }
    assert by_model[FAKE_EMBEDDING_MODEL]["month"]["total_tokens"] == embedding_tokens
    state = await budget_state(runtime_of(app).sessionmaker, alice.id)
    assert state.exact
    assert (state.used, state.ledger_calls, state.rollup_tokens) == (spent, 2, spent)


async def test_a_call_that_does_not_fit_is_refused_with_what_remains(
    app: FastAPI, client: httpx.AsyncClient, admin: Account, alice: Account
) -> None:
    await set_user_limits(client, admin, alice, tokens_per_day=30)
    first = await client.post("/v1/chat/completions", json=chat(), headers=alice.headers)
    assert first.status_code == 200
    # Used 6; this one reserves 2 + 23 = 25, and 24 remain.
    refused = await client.post(
        "/v1/chat/completions", json=chat(max_tokens=23), headers=alice.headers
    )
    assert refused.status_code == 429
    assert refused.json()["error"] == {
        "message": refused.json()["error"]["message"],
        "type": "insufficient_quota",
        "param": None,
        "code": "insufficient_quota",
    }
    message = refused.json()["error"]["message"]
    assert "needs up to 25 tokens" in message
    assert "24 of your 30 tokens per day remain" in message
    tomorrow = datetime.combine(datetime.now(UTC).date() + timedelta(days=1), datetime.min.time())
    seconds_left = (tomorrow.replace(tzinfo=UTC) - datetime.now(UTC)).total_seconds()
    assert abs(int(refused.headers["Retry-After"]) - seconds_left) <= 5

    # Lowering max_tokens to what remains fits.
    fits = await client.post(
        "/v1/chat/completions", json=chat(max_tokens=22), headers=alice.headers
    )
    assert fits.status_code == 200, fits.text

    # Outside /v1: a problem naming the limit, what remains and the period.
    problem = await client.get("/chat", params={"prompt": "hi"}, headers=alice.headers)
    assert problem.status_code == 429
    body = problem.json()
    assert body["type"].endswith(":budget-exceeded")
    assert {key: body[key] for key in ("limit", "subject", "period", "limit_tokens")} == {
        "limit": "tokens_per_day",
        "subject": "user",
        "period": "day",
        "limit_tokens": 30,
    }
    assert body["remaining"] == 30 - 12
    assert body["resets_at"] == tomorrow.replace(tzinfo=UTC).isoformat()
    assert int(problem.headers["Retry-After"]) > 0
    state = await budget_state(runtime_of(app).sessionmaker, alice.id)
    assert state.exact
    assert state.ledger_calls == 2


async def test_a_limit_set_mid_day_counts_what_was_already_used(
    client: httpx.AsyncClient, admin: Account, alice: Account
) -> None:
    for _ in range(3):
        assert (
            await client.post("/v1/chat/completions", json=chat(), headers=alice.headers)
        ).is_success
    await set_user_limits(client, admin, alice, tokens_per_day=25)
    refused = await client.post("/v1/chat/completions", json=chat(), headers=alice.headers)
    assert refused.status_code == 429
    assert "7 of your 25 tokens per day remain" in refused.json()["error"]["message"]
    me = (await client.get("/api/usage/me", headers=alice.headers)).json()
    assert (me["day"]["used"], me["day"]["remaining"]) == (18, 7)


async def test_a_key_is_held_to_its_own_budget_and_its_owners(
    app: FastAPI, client: httpx.AsyncClient, admin: Account, alice: Account
) -> None:
    await set_user_limits(client, admin, alice, tokens_per_day=100)
    key = await new_api_key(client, alice)
    tight = await client.put(
        f"/api/keys/{key['id']}/limits", json={"tokens_per_day": 15}, headers=alice.headers
    )
    assert tight.status_code == 200
    with_key = bearer(key["secret"])
    assert (await complete(client, with_key)).is_success
    refused = await client.post("/v1/chat/completions", json=chat(), headers=with_key)
    assert refused.status_code == 429
    assert "this API key's 15 tokens per day" in refused.json()["error"]["message"]
    # The owner without the key still has room, and its usage counts the key's calls.
    assert (
        await client.post("/v1/chat/completions", json=chat(), headers=alice.headers)
    ).is_success
    me = (await client.get("/api/usage/me", headers=with_key)).json()
    assert me["key"]["api_key_id"] == key["id"]
    assert (me["key"]["day"]["used"], me["key"]["day"]["limit"]) == (6, 15)
    assert (me["day"]["used"], me["day"]["limit"]) == (12, 100)
    sessionmaker = runtime_of(app).sessionmaker
    assert (await budget_state(sessionmaker, alice.id, key_id=key["id"])).exact
    assert (await budget_state(sessionmaker, alice.id)).exact


async def test_a_turn_over_budget_is_refused_before_its_question_is_stored(
    app: FastAPI, client: httpx.AsyncClient, admin: Account, alice: Account
) -> None:
    await set_user_limits(client, admin, alice, tokens_per_day=20)
    created = await client.post(
        "/api/conversations", json={"title": "budget"}, headers=alice.headers
    )
    url = f"/api/conversations/{created.json()['id']}/messages"
    turn = await client.post(url, json={"content": "hi", "max_tokens": 50}, headers=alice.headers)
    assert turn.status_code == 429
    assert turn.json()["type"].endswith(":budget-exceeded")
    assert (await client.get(url, headers=alice.headers)).json()["total"] == 0
    fits = await client.post(url, json={"content": "hi", "max_tokens": 8}, headers=alice.headers)
    assert fits.status_code == 201, fits.text
    assert (await budget_state(runtime_of(app).sessionmaker, alice.id)).exact


async def test_admins_read_usage_by_day_model_user_and_key(
    client: httpx.AsyncClient, admin: Account, alice: Account, bob: Account
) -> None:
    key = await new_api_key(client, alice)
    for headers in (alice.headers, bearer(key["secret"]), bob.headers):
        assert (await complete(client, headers)).is_success
    await client.post(
        "/v1/embeddings", json={"model": FAKE_EMBEDDING_MODEL, "input": "x"}, headers=bob.headers
    )

    async def report(**params: Any) -> dict[str, Any]:
        response = await client.get("/api/usage", params=params, headers=admin.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    everything = await report()
    assert everything["total"] == 1
    [row] = everything["items"]
    assert row["calls"] == 4
    by_user = await report(group_by=["user", "model"])
    rows = {(row["email"], row["model"]): row["calls"] for row in by_user["items"]}
    assert rows == {
        (alice.email, FAKE_CHAT_MODEL): 2,
        (bob.email, FAKE_CHAT_MODEL): 1,
        (bob.email, FAKE_EMBEDDING_MODEL): 1,
    }
    by_key = await report(user=alice.id, group_by=["key"])
    keys = {row["api_key_id"]: row["total_tokens"] for row in by_key["items"]}
    assert keys == {None: 6, key["id"]: 6}
    only_key = await report(key=key["id"], model=FAKE_CHAT_MODEL, group_by="day")
    assert [(row["day"], row["calls"]) for row in only_key["items"]] == [
        (datetime.now(UTC).date().isoformat(), 1)
    ]
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    none = await report(to=yesterday, group_by="day")
    assert none["items"] == []
    backwards = await client.get(
        "/api/usage", params={"from": "2026-02-02", "to": "2026-02-01"}, headers=admin.headers
    )
    assert backwards.status_code == 400
    assert (await client.get("/api/usage", headers=alice.headers)).status_code == 403
