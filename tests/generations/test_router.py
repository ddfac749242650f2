"""`/api/generations`: replies that outlive their connection, resumable events, cancel."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import httpx
from fastapi import FastAPI

from genai_service.runtime import runtime_of
from genai_service.settings import Settings
from tests.conftest import client_for, second_process
from tests.conversations.support import (
    LONG_REPLY,
    SLOW_CHAT_MODEL,
    SseEvent,
    ask,
    messages_of,
    new_conversation,
    parse_sse,
    started_app,
    wait_for_generation,
)
from tests.fakes import ScriptedChatModel
from tests.identity import Account, new_account
from tests.polling import wait_until

GENERATION_FIELDS = {
    "id",
    "conversation_id",
    "status",
    "model",
    "user_message_id",
    "assistant_message_id",
    "created_at",
    "deadline_at",
    "finished_at",
}


async def read_events(lines: AsyncIterator[str], count: int) -> list[SseEvent]:
    """The next `count` events of a live SSE stream."""
    events: list[SseEvent] = []
    block: list[str] = []
    async for line in lines:
        if line:
            block.append(line)
            continue
        parsed, _ = parse_sse("\n".join(block) + "\n\n")
        block = []
        events.extend(parsed)
        if len(events) >= count:
            return events
    return events


@asynccontextmanager
async def live_turn(
    server_url: str, account: Account, conversation_id: str, content: str
) -> AsyncIterator[tuple[httpx.Response, AsyncIterator[str]]]:
    """A streamed turn over a real socket; leaving the block drops the connection."""
    async with (
        httpx.AsyncClient(base_url=server_url, timeout=30) as http,
        http.stream(
            "POST",
            f"/api/conversations/{conversation_id}/messages",
            json={"content": content, "stream": True},
            headers=account.headers,
        ) as response,
    ):
        assert response.status_code == 200
        yield response, response.aiter_lines()


async def test_read_a_generation(client: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    conversation = await new_conversation(client, alice, title="G")
    turn = (await ask(client, alice, conversation["id"], "hello")).json()
    url = f"/api/generations/{turn['generation_id']}"
    generation = (await client.get(url, headers=alice.headers)).json()
    assert set(generation) == GENERATION_FIELDS
    assert generation["status"] == "completed"
    assert generation["model"] == "fake-chat"
    assert generation["assistant_message_id"] == turn["assistant_message"]["id"]
    assert generation["finished_at"] is not None
    for path in (url, f"{url}/events"):
        assert (await client.get(path, headers=bob.headers)).status_code == 404
    assert (await client.post(f"{url}/cancel", headers=bob.headers)).status_code == 404


async def test_a_dropped_stream_still_stores_the_whole_reply(
    client: httpx.AsyncClient, server_url: str, alice: Account
) -> None:
    conversation = await new_conversation(client, alice, title="Drop", model=SLOW_CHAT_MODEL)
    async with live_turn(server_url, alice, conversation["id"], "long one") as (response, lines):
        generation_id = response.headers["X-Generation-ID"]
        events = await read_events(lines, 3)
    assert [event.event for event in events] == ["generation", "delta", "delta"]
    generation = await wait_for_generation(client, alice, generation_id)
    assert generation["status"] == "completed"
    stored = await messages_of(client, alice, conversation["id"])
    assert stored[-1]["content"] == LONG_REPLY
    assert stored[-1]["status"] == "completed"


async def test_last_event_id_resumes_exactly_the_missing_events(
    client: httpx.AsyncClient, server_url: str, alice: Account
) -> None:
    conversation = await new_conversation(client, alice, title="Resume", model=SLOW_CHAT_MODEL)
    async with live_turn(server_url, alice, conversation["id"], "long one") as (response, lines):
        generation_id = response.headers["X-Generation-ID"]
        seen = await read_events(lines, 5)
    events_url = f"/api/generations/{generation_id}/events"
    # Resume while the generation is still running, over a real socket: live events follow.
    async with (
        httpx.AsyncClient(base_url=server_url, timeout=30) as http,
        http.stream(
            "GET", events_url, headers={**alice.headers, "Last-Event-ID": str(seen[-1].id)}
        ) as resumed,
    ):
        assert resumed.status_code == 200
        rest, _ = parse_sse((await resumed.aread()).decode())
    assert rest[0].id == seen[-1].id + 1
    assert rest[-1].event == "done"
    whole, _ = parse_sse((await client.get(events_url, headers=alice.headers)).text)
    assert [(e.id, e.event, e.data) for e in [*seen, *rest]] == [
        (e.id, e.event, e.data) for e in whole
    ]
    assert [e.id for e in whole] == list(range(1, len(whole) + 1))
    text = "".join(e.data["text"] for e in whole if e.event == "delta")
    assert text == LONG_REPLY == whole[-1].data["message"]["content"]
    last = await client.get(events_url, headers={**alice.headers, "Last-Event-ID": str(len(whole))})
    assert parse_sse(last.text)[0] == []
    bad = await client.get(events_url, headers={**alice.headers, "Last-Event-ID": "five"})
    assert bad.status_code == 422


async def test_events_expire_after_the_retention(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    runtime_of(app).events.retention_seconds = 0.0
    conversation = await new_conversation(client, alice, title="Old")
    turn = (await ask(client, alice, conversation["id"], "hello")).json()
    response = await client.get(
        f"/api/generations/{turn['generation_id']}/events", headers=alice.headers
    )
    assert response.status_code == 410
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("generation-events-expired")
    status = await client.get(f"/api/generations/{turn['generation_id']}", headers=alice.headers)
    assert status.json()["status"] == "completed"


async def test_cancel_stores_the_partial_reply(
    client: httpx.AsyncClient, server_url: str, alice: Account
) -> None:
    conversation = await new_conversation(client, alice, title="Stop", model=SLOW_CHAT_MODEL)
    async with live_turn(server_url, alice, conversation["id"], "long one") as (response, lines):
        generation_id = response.headers["X-Generation-ID"]
        await read_events(lines, 4)
        cancelled = await client.post(
            f"/api/generations/{generation_id}/cancel", headers=alice.headers
        )
        assert cancelled.status_code == 200, cancelled.text
        rest = await read_events(lines, 100)
    assert cancelled.json()["status"] == "cancelled"
    assert rest[-1].event == "done"
    assert rest[-1].data["status"] == "cancelled"
    stored = (await messages_of(client, alice, conversation["id"]))[-1]
    assert stored == rest[-1].data["message"]
    assert stored["status"] == "cancelled"
    assert stored["id"] == cancelled.json()["assistant_message_id"]
    assert stored["content"]
    assert LONG_REPLY.startswith(stored["content"])
    assert len(stored["content"]) < len(LONG_REPLY)
    again = await client.post(f"/api/generations/{generation_id}/cancel", headers=alice.headers)
    assert again.status_code == 409
    # The conversation is free for the next turn, and the cancelled text is part of its history.
    assert (await ask(client, alice, conversation["id"], "go on", max_tokens=2)).status_code == 201


async def test_a_cancel_arriving_while_an_event_is_written_still_stops_the_reply(
    client: httpx.AsyncClient, app: FastAPI, server_url: str, alice: Account
) -> None:
    """A model that hardly waits between chunks: the writer spends most of its time appending
    events, so most cancellations reach it inside a Redis call, where Python 3.11 can lose them."""
    model = runtime_of(app).models.chat(SLOW_CHAT_MODEL)
    assert isinstance(model, ScriptedChatModel)
    words = 2000
    model.reply = " ".join(f"w{index}" for index in range(words))
    model.chunk_delay = 0.0005
    runtime_of(app).settings.conversations.default_max_tokens = words

    async def cancelled_turn(delay: float) -> dict[str, Any]:
        conversation = await new_conversation(client, alice, title="Fast", model=SLOW_CHAT_MODEL)
        async with live_turn(server_url, alice, conversation["id"], "go") as (response, _):
            generation_id = response.headers["X-Generation-ID"]
            await asyncio.sleep(delay)
            cancelled = await client.post(
                f"/api/generations/{generation_id}/cancel", headers=alice.headers
            )
        assert cancelled.status_code == 200, cancelled.text
        return (await messages_of(client, alice, conversation["id"]))[-1]

    replies = await asyncio.gather(*(cancelled_turn(0.2 + 0.04 * i) for i in range(6)))
    assert [reply["status"] for reply in replies] == ["cancelled"] * 6
    assert all(len(reply["content"].split()) < words for reply in replies)


async def test_idle_streams_get_heartbeats(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    runtime_of(app).settings.conversations.heartbeat_seconds = 0.01
    conversation = await new_conversation(client, alice, title="Beat", model=SLOW_CHAT_MODEL)
    response = await ask(client, alice, conversation["id"], "slowly", stream=True, max_tokens=5)
    events, heartbeats = parse_sse(response.text)
    assert heartbeats >= 3
    assert [event.event for event in events] == ["generation", *["delta"] * 5, "done"]
    assert ": ping" in response.text


async def test_deleting_a_conversation_cancels_its_generation(
    client: httpx.AsyncClient, server_url: str, alice: Account
) -> None:
    conversation = await new_conversation(client, alice, title="Gone", model=SLOW_CHAT_MODEL)
    async with live_turn(server_url, alice, conversation["id"], "long one") as (response, lines):
        generation_id = response.headers["X-Generation-ID"]
        await read_events(lines, 3)
        url = f"/api/conversations/{conversation['id']}"
        assert (await client.delete(url, headers=alice.headers)).status_code == 204
        rest = await asyncio.wait_for(read_events(lines, 100), 10)
    assert rest[-1].event == "error"
    assert "deleted" in rest[-1].data["detail"]
    gone = await client.get(f"/api/generations/{generation_id}", headers=alice.headers)
    assert gone.status_code == 404
    assert json.loads(gone.text)["status"] == 404


def replying(app: FastAPI) -> bool:
    """One generation runs and has produced some text."""
    model = runtime_of(app).models.chat(SLOW_CHAT_MODEL)
    assert isinstance(model, ScriptedChatModel)
    running: int = runtime_of(app).generations.running
    return running == 1 and model.chunks_sent >= 2


async def test_shutdown_drains_finishing_the_running_reply_and_refusing_new_turns(
    settings: Settings, alice: Account
) -> None:
    """Told to stop (SIGTERM calls `drain`, see `kit.exit_signals`), the server admits no new
    turn and is not ready, and the reply being written is finished and stored before it exits."""
    async for app in started_app(second_process(settings)):
        async with client_for(app) as http:
            account = await new_account(app, http, "alice")
            conversation = await new_conversation(http, account, model=SLOW_CHAT_MODEL)
            other = await new_conversation(http, account)
            pending = asyncio.create_task(ask(http, account, conversation["id"], "long one"))
            await wait_until(partial(replying, app), within=10)
            runtime_of(app).generations.drain()
            refused = await ask(http, account, other["id"], "hello?")
            ready = await http.get("/readyz")
            not_stored = await messages_of(http, account, other["id"])
    assert refused.status_code == 503
    assert refused.json()["type"].endswith(":server-shutting-down")
    assert refused.headers["Retry-After"] == "1"
    assert not_stored == []
    assert ready.status_code == 503
    assert "shutting down" in ready.json()["detail"]
    response = await asyncio.wait_for(pending, 10)
    assert response.status_code == 201, response.text
    reply = response.json()["assistant_message"]
    assert (reply["status"], reply["content"]) == ("completed", LONG_REPLY)


async def test_a_reply_running_past_the_grace_period_is_stopped_with_its_text_stored(
    settings: Settings, alice: Account
) -> None:
    http_settings = settings.http.model_copy(update={"shutdown_grace_seconds": 0.3})
    short_grace = second_process(settings).model_copy(update={"http": http_settings})
    async for app in started_app(short_grace):
        async with client_for(app) as http:
            account = await new_account(app, http, "alice")
            conversation = await new_conversation(http, account, model=SLOW_CHAT_MODEL)
            pending = asyncio.create_task(ask(http, account, conversation["id"], "long one"))
            await wait_until(partial(replying, app), within=10)
            runtime_of(app).generations.drain()
            response = await asyncio.wait_for(pending, 10)
            generation_id = response.json()["generation_id"]
            events = await http.get(
                f"/api/generations/{generation_id}/events", headers=account.headers
            )
            stored = await messages_of(http, account, conversation["id"])
    assert response.status_code == 502, response.text
    reply = response.json()["assistant_message"]
    assert reply["status"] == "failed"
    assert reply["content"]
    assert LONG_REPLY.startswith(reply["content"])
    assert reply["content"] != LONG_REPLY
    assert "restarted" in reply["error"]
    final = parse_sse(events.text)[0][-1]
    assert (final.event, final.data["reason"]) == ("error", "server-shutdown")
    assert [(m["role"], m["status"]) for m in stored] == [
        ("user", "completed"),
        ("assistant", "failed"),
    ]
