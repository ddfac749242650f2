"""Deleting a conversation while its reply is being written: the reply stops and is dropped.

The generation ends `cancelled` (its row goes with the conversation); whoever waits for it —
a non-streamed turn, a streamed one, a follower of `/api/generations/{id}/events` — gets a final
answer saying the conversation was deleted: never a 502, never a traceback in the log.
"""

from __future__ import annotations

import asyncio
import uuid
from functools import partial

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from genai_service.models.conversation import Generation, Message
from genai_service.runtime import runtime_of
from genai_service.settings import Settings
from tests.conftest import client_for, second_process
from tests.conversations.support import (
    LONG_REPLY,
    SLOW_CHAT_MODEL,
    ask,
    new_conversation,
    started_app,
)
from tests.fakes import ScriptedChatModel
from tests.generations.test_router import live_turn, read_events
from tests.identity import Account
from tests.polling import wait_until

DELETED = "conversation-deleted"


def slow_model(app: FastAPI) -> ScriptedChatModel:
    model = runtime_of(app).models.chat(SLOW_CHAT_MODEL)
    assert isinstance(model, ScriptedChatModel)
    return model


def replying(app: FastAPI) -> bool:
    running: int = runtime_of(app).generations.running
    return running == 1 and slow_model(app).chunks_sent >= 2


def idle(app: FastAPI) -> bool:
    running: int = runtime_of(app).generations.running
    return running == 0


async def rows_left(app: FastAPI) -> tuple[int, int]:
    async with runtime_of(app).sessionmaker() as session:
        generations = await session.scalar(select(func.count()).select_from(Generation))
        messages = await session.scalar(select(func.count()).select_from(Message))
    return generations or 0, messages or 0


def no_trouble_logged(lines: list[str]) -> None:
    assert not [line for line in lines if "Traceback" in line or "could not be stored" in line]


async def test_a_waiting_turn_answers_that_the_conversation_was_deleted(
    client: httpx.AsyncClient, app: FastAPI, alice: Account, captured_logs: list[str]
) -> None:
    conversation = await new_conversation(client, alice, title="Gone", model=SLOW_CHAT_MODEL)
    pending = asyncio.create_task(ask(client, alice, conversation["id"], "long one"))
    await wait_until(partial(replying, app), within=10)
    deleted = await client.delete(f"/api/conversations/{conversation['id']}", headers=alice.headers)
    assert deleted.status_code == 204
    response = await asyncio.wait_for(pending, 10)
    assert response.status_code == 404, response.text
    problem = response.json()
    assert problem["type"].endswith(DELETED)
    assert "deleted while this reply was being written" in problem["detail"]
    uuid.UUID(problem["generation_id"])
    # The model stream was stopped, not run to its end: the slot is free again.
    await wait_until(partial(idle, app), within=5)
    assert slow_model(app).chunks_sent < len(LONG_REPLY.split())
    assert await rows_left(app) == (0, 0)
    no_trouble_logged(captured_logs)


async def test_followers_get_a_final_event_saying_so(
    client: httpx.AsyncClient, server_url: str, alice: Account, captured_logs: list[str]
) -> None:
    conversation = await new_conversation(client, alice, title="Gone", model=SLOW_CHAT_MODEL)
    async with (
        live_turn(server_url, alice, conversation["id"], "long one") as (response, lines),
        httpx.AsyncClient(base_url=server_url, timeout=30) as http,
    ):
        generation_id = response.headers["X-Generation-ID"]
        await read_events(lines, 3)
        events_url = f"/api/generations/{generation_id}/events"
        async with http.stream("GET", events_url, headers=alice.headers) as follower:
            assert follower.status_code == 200
            url = f"/api/conversations/{conversation['id']}"
            assert (await client.delete(url, headers=alice.headers)).status_code == 204
            streamed = await asyncio.wait_for(read_events(lines, 100), 10)
            followed = await asyncio.wait_for(read_events(follower.aiter_lines(), 100), 10)
    for events in (streamed, followed):
        final = events[-1]
        assert final.event == "error"
        assert final.data["status"] == "cancelled"
        assert final.data["reason"] == DELETED
        assert final.data["message"] is None
        assert "deleted" in final.data["detail"]
    # Replaying afterwards: the generation went with its conversation.
    assert (await client.get(events_url, headers=alice.headers)).status_code == 404
    no_trouble_logged(captured_logs)


async def test_turns_racing_deletes_never_fail(
    client: httpx.AsyncClient, app: FastAPI, alice: Account, captured_logs: list[str]
) -> None:
    """A turn and the delete of its conversation sent together, with an instant model, so the
    delete lands before the turn is admitted, while it is written, or after it is stored."""
    conversations = [await new_conversation(client, alice, title=f"R{n}") for n in range(8)]

    async def turn_and_delete(conversation_id: str) -> tuple[int, int]:
        url = f"/api/conversations/{conversation_id}"
        turn, deleted = await asyncio.gather(
            ask(client, alice, conversation_id, "quick"),
            client.delete(url, headers=alice.headers),
        )
        return turn.status_code, deleted.status_code

    outcomes = await asyncio.gather(*(turn_and_delete(c["id"]) for c in conversations))
    assert {turn for turn, _ in outcomes} <= {201, 404}
    assert {deleted for _, deleted in outcomes} == {204}
    await wait_until(partial(idle, app), within=5)
    assert await rows_left(app) == (0, 0)
    no_trouble_logged(captured_logs)


async def test_a_delete_in_another_process_stops_the_writer(
    client: httpx.AsyncClient, settings: Settings, alice: Account
) -> None:
    """The deleting process cannot reach the writer's event log; the writer finds its
    generation gone at its next heartbeat and stops the model."""
    conversations = settings.conversations.model_copy(update={"generation_liveness_seconds": 0.3})
    quick = second_process(settings).model_copy(update={"conversations": conversations})
    async for writer in started_app(quick):
        async with client_for(writer) as http:
            conversation = await new_conversation(http, alice, model=SLOW_CHAT_MODEL)
            pending = asyncio.create_task(ask(http, alice, conversation["id"], "long one"))
            await wait_until(partial(replying, writer), within=10)
            url = f"/api/conversations/{conversation['id']}"
            assert (await client.delete(url, headers=alice.headers)).status_code == 204
            response = await asyncio.wait_for(pending, 10)
            assert response.status_code == 404, response.text
            assert response.json()["type"].endswith(DELETED)
            assert slow_model(writer).chunks_sent < len(LONG_REPLY.split())
