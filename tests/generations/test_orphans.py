"""Generations left running by a crashed server: swept within the liveness period, cancellable,
and never confused with a live writer in another process sharing the database."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from functools import partial

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from genai_service.conversations.replies import INTERRUPTED
from genai_service.kit.db import utcnow
from genai_service.models.conversation import Generation, GenerationStatus, Message, MessageRole
from genai_service.runtime import runtime_of
from genai_service.settings import Settings
from tests.conftest import client_for, second_process
from tests.conversations.support import (
    LONG_REPLY,
    SLOW_CHAT_MODEL,
    ask,
    messages_of,
    new_conversation,
    started_app,
    wait_for_generation,
)
from tests.fakes import ScriptedChatModel
from tests.identity import Account
from tests.polling import wait_until

LIVENESS = 1.0
"""Seconds of heartbeat silence that make a generation an orphan, in the quick apps here."""


def quick(settings: Settings) -> Settings:
    """Settings of another process on the same database, whose runner beats every third of a
    second."""
    conversations = settings.conversations.model_copy(
        update={"generation_liveness_seconds": LIVENESS}
    )
    return second_process(settings).model_copy(update={"conversations": conversations})


@pytest.fixture
async def sweeper(settings: Settings) -> AsyncIterator[FastAPI]:
    async for app in started_app(quick(settings)):
        yield app


async def add_orphan(
    app: FastAPI, conversation_id: str, owner: Account, *, heartbeat_ago: timedelta
) -> uuid.UUID:
    """A running generation as a killed process leaves it: its question stored, its deadline
    far off, its heartbeat last renewed `heartbeat_ago`."""
    async with runtime_of(app).sessionmaker.begin() as session:
        question = Message(
            conversation_id=uuid.UUID(conversation_id), role=MessageRole.USER, content="lost"
        )
        session.add(question)
        await session.flush()
        generation = Generation(
            conversation_id=uuid.UUID(conversation_id),
            owner_id=uuid.UUID(owner.id),
            user_message_id=question.id,
            model="fake-chat",
            deadline_at=utcnow() + timedelta(minutes=9),
            heartbeat_at=utcnow() - heartbeat_ago,
        )
        session.add(generation)
    return generation.id


async def status_of(app: FastAPI, generation_id: uuid.UUID) -> GenerationStatus:
    async with runtime_of(app).sessionmaker() as session:
        generation = await session.get(Generation, generation_id)
    assert generation is not None
    return generation.status


async def test_the_sweep_gives_up_an_orphan_within_the_liveness_period(
    client: httpx.AsyncClient, app: FastAPI, sweeper: FastAPI, alice: Account
) -> None:
    """Its writer renewed the heartbeat just before it was killed: no turn, no restart comes,
    and the generation still shows `failed` a liveness period (plus one beat) later."""
    conversation = await new_conversation(client, alice, title="Crash")
    generation_id = await add_orphan(app, conversation["id"], alice, heartbeat_ago=timedelta(0))
    killed = time.monotonic()
    generation = await wait_for_generation(client, alice, str(generation_id))
    assert generation["status"] == "failed"
    assert time.monotonic() - killed >= LIVENESS
    stored = await messages_of(client, alice, conversation["id"])
    assert [(m["role"], m["status"], m["error"]) for m in stored] == [
        ("user", "completed", None),
        ("assistant", "failed", INTERRUPTED),
    ]
    assert generation["assistant_message_id"] == stored[-1]["id"]


async def test_cancelling_an_orphan_before_the_sweep_stores_it_cancelled(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    """Its server was killed a minute ago; no sweep has run since (this app sweeps every 10 s)."""
    conversation = await new_conversation(client, alice, title="Crash")
    minute = timedelta(minutes=1)
    generation_id = await add_orphan(app, conversation["id"], alice, heartbeat_ago=minute)
    url = f"/api/generations/{generation_id}/cancel"
    cancelled = await client.post(url, headers=alice.headers)
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "cancelled"
    assert body["finished_at"] is not None
    stored = await messages_of(client, alice, conversation["id"])
    assert stored[-1]["id"] == body["assistant_message_id"]
    assert (stored[-1]["status"], stored[-1]["content"]) == ("cancelled", "")
    assert stored[-1]["error"] == INTERRUPTED
    assert (await client.post(url, headers=alice.headers)).status_code == 409
    assert (await ask(client, alice, conversation["id"], "again")).status_code == 201


async def test_a_reader_of_a_cancelled_orphan_hears_it_once_it_is_stored(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    """The killed process left the generation's event log open (on Redis, any process's
    readers follow it). Cancelling it ends that log with the stored reply, and only once the
    reply is committed: a reader that reacts to the last event at once finds it stored."""
    conversation = await new_conversation(client, alice, title="Crash")
    minute = timedelta(minutes=1)
    generation_id = await add_orphan(app, conversation["id"], alice, heartbeat_ago=minute)
    events = runtime_of(app).events
    await events.open(generation_id)

    async def status_at_the_last_event() -> tuple[str, dict[str, object], GenerationStatus]:
        async for event in await events.subscribe(generation_id):
            if event.is_terminal:
                return event.type, event.data, await status_of(app, generation_id)
        raise AssertionError("the event log ended without a terminal event")

    reader = asyncio.create_task(status_at_the_last_event())
    cancelled = await client.post(f"/api/generations/{generation_id}/cancel", headers=alice.headers)
    assert cancelled.status_code == 200, cancelled.text
    event_type, data, status = await asyncio.wait_for(reader, 10)
    assert (event_type, status) == ("done", GenerationStatus.CANCELLED)
    assert data["status"] == "cancelled"
    message = data["message"]
    assert isinstance(message, dict)
    assert message["id"] == cancelled.json()["assistant_message_id"]


def slow_model(app: FastAPI) -> ScriptedChatModel:
    model = runtime_of(app).models.chat(SLOW_CHAT_MODEL)
    assert isinstance(model, ScriptedChatModel)
    return model


def replying(app: FastAPI) -> bool:
    running: int = runtime_of(app).generations.running
    return running == 1 and slow_model(app).chunks_sent >= 2


async def test_a_live_writer_in_another_process_is_never_given_up(
    client: httpx.AsyncClient,
    app: FastAPI,
    sweeper: FastAPI,
    settings: Settings,
    alice: Account,
) -> None:
    """Two processes beat every third of a second. One writes a 3 s reply (three liveness
    periods); the other gives up a dead process's generation meanwhile, but never the live one
    — and, without Redis, cannot cancel it (its event log is not shared): 409 with
    `Retry-After`, the reply untouched."""
    async for writer in started_app(quick(settings)):
        async with client_for(writer) as http:
            conversation = await new_conversation(http, alice, model=SLOW_CHAT_MODEL)
            pending = asyncio.create_task(ask(http, alice, conversation["id"], "long one"))
            await wait_until(partial(replying, writer), within=10)
            async with runtime_of(writer).sessionmaker() as session:
                live_id = (await session.execute(select(Generation.id))).scalar_one()
            other = await new_conversation(client, alice, title="Dead")
            dead_id = await add_orphan(app, other["id"], alice, heartbeat_ago=timedelta(0))
            if settings.redis.url is None:
                async with client_for(sweeper) as elsewhere:
                    refused = await elsewhere.post(
                        f"/api/generations/{live_id}/cancel", headers=alice.headers
                    )
                assert refused.status_code == 409, refused.text
                assert refused.json()["type"].endswith("generation-running-elsewhere")
                assert refused.headers["Retry-After"] == "1"
            response = await asyncio.wait_for(pending, 20)
    assert await status_of(app, dead_id) is GenerationStatus.FAILED
    assert response.status_code == 201, response.text
    reply = response.json()["assistant_message"]
    assert (reply["status"], reply["content"]) == ("completed", LONG_REPLY)
    assert await status_of(app, live_id) is GenerationStatus.COMPLETED


async def test_a_cancel_on_another_process_stops_the_writer_at_once(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings, alice: Account
) -> None:
    """With Redis, the process that takes the cancel is not the one writing: the writer stops
    its model at once, stores the partial reply once, and the cancel answers with it."""
    if settings.redis.url is None:
        pytest.skip("without Redis a cancel reaches only this process's generations")
    async for writer in started_app(second_process(settings)):
        async with client_for(writer) as http:
            conversation = await new_conversation(http, alice, model=SLOW_CHAT_MODEL)
            pending = asyncio.create_task(ask(http, alice, conversation["id"], "long one"))
            await wait_until(partial(replying, writer), within=10)
            async with runtime_of(writer).sessionmaker() as session:
                live_id = (await session.execute(select(Generation.id))).scalar_one()
            asked = time.monotonic()
            cancelled = await client.post(
                f"/api/generations/{live_id}/cancel", headers=alice.headers
            )
            took = time.monotonic() - asked
            assert cancelled.status_code == 200, cancelled.text
            assert cancelled.json()["status"] == "cancelled"
            sent = slow_model(writer).chunks_sent
            response = await asyncio.wait_for(pending, 10)
            assert slow_model(writer).chunks_sent == sent
    assert took < 2
    assert response.status_code == 201, response.text
    reply = response.json()["assistant_message"]
    assert reply["status"] == "cancelled"
    assert reply["id"] == cancelled.json()["assistant_message_id"]
    assert reply["content"]
    assert LONG_REPLY.startswith(reply["content"])
    assert len(reply["content"]) < len(LONG_REPLY)
    stored = await messages_of(client, alice, conversation["id"])
    assert [(m["role"], m["status"]) for m in stored] == [
        ("user", "completed"),
        ("assistant", "cancelled"),
    ]


async def test_a_generation_ended_elsewhere_stops_its_writer(
    settings: Settings, alice: Account
) -> None:
    """Another process ended the generation (it took this one's stall for a crash): the
    writer sees it at its next heartbeat and stops the model instead of running it out."""
    async for writer in started_app(quick(settings)):
        async with client_for(writer) as http:
            conversation = await new_conversation(http, alice, model=SLOW_CHAT_MODEL)
            pending = asyncio.create_task(ask(http, alice, conversation["id"], "long one"))
            await wait_until(partial(replying, writer), within=10)
            async with runtime_of(writer).sessionmaker.begin() as session:
                await session.execute(
                    update(Generation).values(status=GenerationStatus.FAILED, finished_at=utcnow())
                )
            response = await asyncio.wait_for(pending, 10)
            assert response.status_code == 502, response.text
            assert "given up" in response.json()["detail"]
            assert slow_model(writer).chunks_sent < len(LONG_REPLY.split())
