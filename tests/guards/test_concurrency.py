"""`max_concurrent`: never more model calls in flight than the limit, measured in the model; the
rest refused with 429; and every slot back when its call ends — streams whose clients drop
mid-stream, requests cancelled, generations cancelled, a provider failing — so no slot can leak."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from tests.conversations.support import FAILING_CHAT_MODEL, new_conversation
from tests.guards.support import GATED_CHAT_MODEL, chat, gated_model, rate_storage, set_limits
from tests.identity import Account
from tests.polling import wait_until


def slots_key(account: Account) -> str:
    return f"user:{account.id}:in-flight"


async def open_stream(http: httpx.AsyncClient, account: Account) -> httpx.Response:
    request = http.build_request(
        "POST",
        "/v1/chat/completions",
        json=chat(model=GATED_CHAT_MODEL, stream=True, max_tokens=10),
        headers=account.headers,
    )
    return await http.send(request, stream=True)


async def first_event(response: httpx.Response) -> str:
    async for line in response.aiter_lines():
        if line.startswith("data: "):
            return line
    raise AssertionError("the stream ended before its first event")


async def test_eight_simultaneous_streams_against_two_slots(
    app: FastAPI, server_url: str, alice: Account
) -> None:
    await set_limits(app, user_id=alice.id, max_concurrent=2)
    model, storage = gated_model(app), rate_storage(app)
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as http:
        responses = await asyncio.gather(*(open_stream(http, alice) for _ in range(8)))
        admitted = [response for response in responses if response.status_code == 200]
        refused = [response for response in responses if response.status_code == 429]
        assert (len(admitted), len(refused)) == (2, 6)
        assert (model.in_flight, storage.in_flight(slots_key(alice))) == (2, 2)
        for response in refused:
            await response.aread()
            assert response.headers["retry-after"] == "1"
            error = response.json()["error"]
            assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
            assert "max_concurrent" in error["message"]
        model.gate.set()
        for response in admitted:
            lines = [line async for line in response.aiter_lines() if line.startswith("data:")]
            assert lines[-1] == "data: [DONE]"
            await response.aclose()
        assert model.peak == 2
        await wait_until(lambda: storage.in_flight(slots_key(alice)) == 0)
        again = await asyncio.gather(*(open_stream(http, alice) for _ in range(2)))
        assert [response.status_code for response in again] == [200, 200]
        for response in again:
            await response.aread()
            await response.aclose()


async def test_streams_whose_clients_drop_midway_give_their_slots_back(
    app: FastAPI, server_url: str, alice: Account
) -> None:
    await set_limits(app, user_id=alice.id, max_concurrent=3)
    model, storage = gated_model(app), rate_storage(app)
    for _ in range(3):  # the same slots, dropped again and again
        clients = [httpx.AsyncClient(base_url=server_url, timeout=30) for _ in range(3)]
        responses = [await open_stream(http, alice) for http in clients]
        assert [response.status_code for response in responses] == [200, 200, 200]
        for response in responses:
            assert (await first_event(response)).startswith("data: {")
        assert storage.in_flight(slots_key(alice)) == 3
        for http, response in zip(clients, responses, strict=True):
            await response.aclose()  # mid-stream: the model still holds the rest on its gate
            await http.aclose()
        await wait_until(lambda: storage.in_flight(slots_key(alice)) == 0)
        await wait_until(lambda: model.in_flight == 0)
    assert not model.gate.is_set()
    assert model.peak == 3


async def test_a_cancelled_request_gives_its_slot_back(
    app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    await set_limits(app, user_id=alice.id, max_concurrent=1)
    model, storage = gated_model(app), rate_storage(app)
    body = chat(model=GATED_CHAT_MODEL, max_tokens=10)
    request = asyncio.create_task(
        client.post("/v1/chat/completions", json=body, headers=alice.headers)
    )
    await wait_until(lambda: model.in_flight == 1)
    busy = await client.post("/v1/chat/completions", json=body, headers=alice.headers)
    assert busy.status_code == 429
    request.cancel()
    await asyncio.wait({request})
    assert request.cancelled()
    await wait_until(lambda: storage.in_flight(slots_key(alice)) == 0)
    model.gate.set()
    assert (
        await client.post("/v1/chat/completions", json=body, headers=alice.headers)
    ).status_code == 200


async def test_a_cancelled_generation_gives_its_slot_back(
    app: FastAPI, client: httpx.AsyncClient, server_url: str, alice: Account
) -> None:
    await set_limits(app, user_id=alice.id, max_concurrent=1)
    model, storage = gated_model(app), rate_storage(app)
    conversation = await new_conversation(client, alice, model=GATED_CHAT_MODEL)
    path = f"/api/conversations/{conversation['id']}/messages"
    turn = {"content": "hello", "stream": True, "max_tokens": 10}
    async with (
        httpx.AsyncClient(base_url=server_url, timeout=30) as http,
        http.stream("POST", path, json=turn, headers=alice.headers) as started,
    ):
        assert started.status_code == 200
        generation_id = started.headers["x-generation-id"]
    # The client left; the server goes on writing the reply, which holds the slot.
    await wait_until(lambda: model.in_flight == 1)
    assert storage.in_flight(slots_key(alice)) == 1
    other = await new_conversation(client, alice, model=GATED_CHAT_MODEL)
    refused = await client.post(
        f"/api/conversations/{other['id']}/messages",
        json={"content": "and here?"},
        headers=alice.headers,
    )
    assert refused.status_code == 429
    cancelled = await client.post(f"/api/generations/{generation_id}/cancel", headers=alice.headers)
    assert cancelled.status_code == 200, cancelled.text
    await wait_until(lambda: storage.in_flight(slots_key(alice)) == 0)
    assert model.in_flight == 0


async def test_a_failed_provider_gives_its_slot_and_unused_tokens_back(
    app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    await set_limits(app, user_id=alice.id, max_concurrent=1, tokens_per_minute=1000)
    storage = rate_storage(app)
    # Each call holds its prompt and 400 tokens: without their unused tokens given back, the
    # third would not fit.
    body = chat(model=FAILING_CHAT_MODEL, max_tokens=400)
    failed = await client.post("/v1/chat/completions", json=body, headers=alice.headers)
    assert failed.status_code >= 500
    assert "error" in failed.json()
    await wait_until(lambda: storage.in_flight(slots_key(alice)) == 0)
    async with client.stream(
        "POST", "/v1/chat/completions", json={**body, "stream": True}, headers=alice.headers
    ) as streamed:
        assert streamed.status_code == 200
        events = [line async for line in streamed.aiter_lines() if line.startswith("data:")]
    assert events  # the chunks it sent before it failed
    await wait_until(lambda: storage.in_flight(slots_key(alice)) == 0)
    after = await client.post("/v1/chat/completions", json=body, headers=alice.headers)
    assert after.status_code >= 500
    assert after.json()["error"]["code"] != "rate_limit_exceeded"
    admitted = await client.post(
        "/v1/chat/completions", json=chat(max_tokens=400), headers=alice.headers
    )
    assert admitted.status_code == 200
