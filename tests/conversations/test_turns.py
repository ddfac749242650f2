"""Chat turns over HTTP: stored messages, SSE events, one generation at a time, failures, titles."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from functools import partial
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from genai_service.generations.runner import GenerationRunner
from genai_service.kit.db import utcnow
from genai_service.models.conversation import (
    Generation,
    GenerationStatus,
    Message,
    MessageRole,
)
from genai_service.runtime import runtime_of
from genai_service.settings import Settings
from tests.conftest import client_for, second_process
from tests.conversations.support import (
    FAILING_CHAT_MODEL,
    LONG_REPLY,
    SLOW_CHAT_MODEL,
    ask,
    messages_of,
    new_conversation,
    parse_sse,
    started_app,
    wait_for_generation,
)
from tests.identity import Account, new_account
from tests.polling import wait_until

MESSAGE_FIELDS = {
    "id",
    "conversation_id",
    "role",
    "content",
    "created_at",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
    "status",
    "error",
    "citations",
}


async def test_a_turn_stores_both_messages(client: httpx.AsyncClient, alice: Account) -> None:
    conversation = await new_conversation(client, alice, title="Hi")
    response = await ask(client, alice, conversation["id"], "hello there")
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"generation_id", "user_message", "assistant_message"}
    user, assistant = body["user_message"], body["assistant_message"]
    assert set(assistant) == MESSAGE_FIELDS
    assert (user["role"], user["content"]) == ("user", "hello there")
    assert (assistant["role"], assistant["content"]) == ("assistant", "You said: hello there")
    assert assistant["status"] == "completed"
    assert assistant["model"] == "fake-chat"
    assert assistant["prompt_tokens"] == 2
    assert assistant["completion_tokens"] == 4
    assert assistant["latency_ms"] >= 0
    assert assistant["error"] is None
    assert assistant["citations"] == []
    stored = await messages_of(client, alice, conversation["id"])
    assert [m["id"] for m in stored] == [user["id"], assistant["id"]]
    generation = await wait_for_generation(client, alice, body["generation_id"])
    assert generation["status"] == "completed"
    assert generation["assistant_message_id"] == assistant["id"]
    assert generation["user_message_id"] == user["id"]


async def test_history_and_system_prompt_reach_the_model(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    conversation = await new_conversation(client, alice, title="T", system_prompt="Be brief.")
    await ask(client, alice, conversation["id"], "first")
    await ask(client, alice, conversation["id"], "second", max_tokens=3, temperature=0, seed=7)
    request = runtime_of(app).models.chat("fake-chat").requests[-1]
    assert [(m.role, m.content) for m in request.messages] == [
        ("system", "Be brief."),
        ("user", "first"),
        ("assistant", "You said: first"),
        ("user", "second"),
    ]
    assert (request.sampling.max_tokens, request.sampling.temperature) == (3, 0)
    assert request.sampling.seed == 7


async def test_a_streamed_turn(client: httpx.AsyncClient, alice: Account) -> None:
    conversation = await new_conversation(client, alice, title="Stream")
    response = await ask(client, alice, conversation["id"], "stream me", stream=True)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events, _ = parse_sse(response.text)
    assert [event.id for event in events] == list(range(1, len(events) + 1))
    assert [event.event for event in events] == ["generation", *["delta"] * 4, "done"]
    first = events[0].data
    assert first["generation_id"] == response.headers["X-Generation-ID"]
    assert first["user_message"]["content"] == "stream me"
    assert "".join(event.data["text"] for event in events[1:-1]) == "You said: stream me"
    done = events[-1].data
    assert done["status"] == "completed"
    assert done["message"]["content"] == "You said: stream me"
    assert done["message"]["completion_tokens"] == 4
    stored = await messages_of(client, alice, conversation["id"])
    assert stored[-1] == done["message"]


async def test_one_generation_at_a_time(client: httpx.AsyncClient, alice: Account) -> None:
    conversation = await new_conversation(client, alice, title="Busy", model=SLOW_CHAT_MODEL)
    first = asyncio.create_task(ask(client, alice, conversation["id"], "one"))
    await asyncio.sleep(0.2)
    second = await ask(client, alice, conversation["id"], "two")
    assert second.status_code == 409
    assert second.json()["type"].endswith("generation-in-progress")
    assert (await first).status_code == 201
    # The refused turn stored nothing.
    stored = await messages_of(client, alice, conversation["id"])
    assert [m["content"] for m in stored] == ["one", LONG_REPLY]
    assert (await ask(client, alice, conversation["id"], "three")).status_code == 201


async def test_concurrent_turns_race_to_one(client: httpx.AsyncClient, alice: Account) -> None:
    conversation = await new_conversation(client, alice, title="Race", model=SLOW_CHAT_MODEL)
    responses = await asyncio.gather(
        *(ask(client, alice, conversation["id"], f"q{n}", max_tokens=20) for n in range(4))
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
    assert len(await messages_of(client, alice, conversation["id"])) == 2


async def test_a_provider_failure_stores_a_failed_reply(
    client: httpx.AsyncClient, alice: Account
) -> None:
    conversation = await new_conversation(client, alice, title="F", model=FAILING_CHAT_MODEL)
    response = await ask(client, alice, conversation["id"], "will it fail?")
    assert response.status_code == 502
    problem = response.json()
    assert problem["type"].endswith("generation-failed")
    assert "upstream server closed the connection" in problem["detail"]
    stored = await messages_of(client, alice, conversation["id"])
    assert [m["role"] for m in stored] == ["user", "assistant"]
    assert stored[0]["content"] == "will it fail?"
    failed = stored[1]
    assert failed["status"] == "failed"
    assert failed["content"] == "partial reply"
    assert "upstream server closed the connection" in failed["error"]
    assert problem["assistant_message"] == failed
    generation = await wait_for_generation(client, alice, problem["generation_id"])
    assert generation["status"] == "failed"


async def test_a_streamed_failure_ends_with_an_error_event(
    client: httpx.AsyncClient, alice: Account
) -> None:
    conversation = await new_conversation(client, alice, title="F", model=FAILING_CHAT_MODEL)
    response = await ask(client, alice, conversation["id"], "fail", stream=True)
    events, _ = parse_sse(response.text)
    assert [event.event for event in events] == ["generation", "delta", "delta", "error"]
    error = events[-1].data
    assert error["status"] == "failed"
    assert "upstream server closed the connection" in error["detail"]
    assert error["message"]["status"] == "failed"
    # The failed reply is not fed back to the model on the next turn.
    await client.patch(
        f"/api/conversations/{conversation['id']}",
        json={"model": "fake-chat"},
        headers=alice.headers,
    )
    assert (await ask(client, alice, conversation["id"], "again")).status_code == 201


async def test_an_untitled_conversation_gets_a_title(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    conversation = await new_conversation(client, alice)
    assert (await ask(client, alice, conversation["id"], "plan a trip to Rome")).status_code == 201
    url = f"/api/conversations/{conversation['id']}"
    title = None
    for _ in range(200):
        title = (await client.get(url, headers=alice.headers)).json()["title"]
        if title:
            break
        await asyncio.sleep(0.02)
    assert title
    assert len(title.split()) <= 8
    title_request = runtime_of(app).models.chat("fake-chat").requests[-1]
    assert "plan a trip to Rome" in title_request.messages[-1].content
    # A title, once there, is not replaced by later turns.
    await ask(client, alice, conversation["id"], "and Naples")
    await asyncio.sleep(0.1)
    assert (await client.get(url, headers=alice.headers)).json()["title"] == title


async def test_a_titled_conversation_keeps_its_title(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    conversation = await new_conversation(client, alice, title="Mine")
    await ask(client, alice, conversation["id"], "hello")
    await asyncio.sleep(0.1)
    assert len(runtime_of(app).models.chat("fake-chat").requests) == 1
    url = f"/api/conversations/{conversation['id']}"
    assert (await client.get(url, headers=alice.headers)).json()["title"] == "Mine"


async def test_a_message_too_long_for_the_model_is_refused(
    client: httpx.AsyncClient, alice: Account
) -> None:
    conversation = await new_conversation(client, alice, title="Long", model="small-chat")
    response = await ask(client, alice, conversation["id"], "word " * 80, max_tokens=8)
    assert response.status_code == 400
    assert response.json()["type"].endswith("context-length-exceeded")
    assert await messages_of(client, alice, conversation["id"]) == []


async def add_stale_generation(
    app: FastAPI,
    conversation_id: str,
    owner: Account,
    *,
    deadline_in: timedelta = timedelta(hours=-1),
    heartbeat_ago: timedelta | None = None,
) -> None:
    """A generation left `running` by another server: by default one an hour past its deadline
    (and with no heartbeat, as written before heartbeats existed)."""
    async with runtime_of(app).sessionmaker.begin() as session:
        question = Message(
            conversation_id=uuid.UUID(conversation_id), role=MessageRole.USER, content="lost"
        )
        session.add(question)
        await session.flush()
        session.add(
            Generation(
                conversation_id=uuid.UUID(conversation_id),
                owner_id=uuid.UUID(owner.id),
                user_message_id=question.id,
                model="fake-chat",
                deadline_at=utcnow() + deadline_in,
                heartbeat_at=None if heartbeat_ago is None else utcnow() - heartbeat_ago,
            )
        )


async def test_stale_running_generations_are_failed(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    """A generation left `running` by a stopped server blocks nothing once past its deadline."""
    conversation = await new_conversation(client, alice, title="Crash")
    asked = await ask(client, alice, conversation["id"], "before the crash")
    user_message_id = asked.json()["user_message"]["id"]
    await add_stale_generation(app, conversation["id"], alice)
    response = await ask(client, alice, conversation["id"], "after the restart")
    assert response.status_code == 201, response.text
    async with runtime_of(app).sessionmaker() as session:
        rows = (await session.execute(select(Generation))).scalars().all()
    statuses = sorted(row.status.value for row in rows)
    assert statuses == ["completed", "completed", "failed"]
    stored = await messages_of(client, alice, conversation["id"])
    interrupted = [m for m in stored if m["status"] == "failed"]
    assert len(interrupted) == 1
    assert "stopped" in interrupted[0]["error"]
    assert stored[0]["id"] == user_message_id


async def test_a_restarted_server_fails_stale_generations(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings, alice: Account
) -> None:
    conversation = await new_conversation(client, alice, title="Crash")
    await add_stale_generation(app, conversation["id"], alice)
    async for restarted in started_app(second_process(settings)):
        for _ in range(200):
            async with runtime_of(restarted).sessionmaker() as session:
                row = (await session.execute(select(Generation))).scalar_one()
            if row.status is not GenerationStatus.RUNNING:
                break
            await asyncio.sleep(0.02)
    assert row.status is GenerationStatus.FAILED


async def test_stale_generations_are_failed_on_request(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    conversation = await new_conversation(client, alice, title="Crash")
    async with runtime_of(app).sessionmaker.begin() as session:
        question = Message(
            conversation_id=uuid.UUID(conversation["id"]), role=MessageRole.USER, content="lost"
        )
        session.add(question)
        await session.flush()
        fresh: dict[str, Any] = {
            "conversation_id": uuid.UUID(conversation["id"]),
            "owner_id": uuid.UUID(alice.id),
            "user_message_id": question.id,
            "model": "fake-chat",
        }
        session.add(Generation(**fresh, deadline_at=utcnow() - timedelta(hours=1)))
    assert await runtime_of(app).generations.fail_stale() == 1
    assert await runtime_of(app).generations.fail_stale() == 0
    async with runtime_of(app).sessionmaker() as session:
        row = (await session.execute(select(Generation))).scalar_one()
    assert row.status is GenerationStatus.FAILED
    assert row.assistant_message_id is not None


async def test_a_reply_past_its_deadline_fails(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    runtime_of(app).settings.conversations.generation_deadline_seconds = 1.5
    conversation = await new_conversation(client, alice, title="Slow", model=SLOW_CHAT_MODEL)
    response = await ask(client, alice, conversation["id"], "long one")
    assert response.status_code == 502
    failed = response.json()["assistant_message"]
    assert failed["status"] == "failed"
    assert "deadline" in failed["error"]
    assert failed["content"]
    assert LONG_REPLY.startswith(failed["content"])
    generation = await wait_for_generation(client, alice, response.json()["generation_id"])
    assert generation["status"] == "failed"


@pytest.mark.parametrize(
    ("heartbeat_ago", "interrupted"),
    [(timedelta(minutes=1), True), (timedelta(seconds=2), False)],
    ids=["process-killed", "process-alive"],
)
async def test_the_heartbeat_tells_whether_a_running_generation_still_has_a_writer(
    client: httpx.AsyncClient,
    app: FastAPI,
    alice: Account,
    heartbeat_ago: timedelta,
    interrupted: bool,
) -> None:
    """Another server's generation, its deadline far off: silent for a minute, its server was
    killed and the conversation goes on; renewed two seconds ago, it is still being written."""
    conversation = await new_conversation(client, alice, title="Elsewhere")
    await add_stale_generation(
        app,
        conversation["id"],
        alice,
        deadline_in=timedelta(minutes=9),
        heartbeat_ago=heartbeat_ago,
    )
    response = await ask(client, alice, conversation["id"], "meanwhile")
    assert response.status_code == (201 if interrupted else 409), response.text
    stored = await messages_of(client, alice, conversation["id"])
    failed = [m for m in stored if m["status"] == "failed"]
    assert [m["error"] for m in failed] == (
        ["The server stopped before this reply was finished."] if interrupted else []
    )


def one_running(runner: GenerationRunner) -> bool:
    return runner.running == 1


async def test_the_runner_renews_the_heartbeat_of_what_it_writes(
    settings: Settings, alice: Account
) -> None:
    conversations = settings.conversations.model_copy(update={"generation_liveness_seconds": 0.3})
    quick = second_process(settings).model_copy(update={"conversations": conversations})
    async for app in started_app(quick):
        async with client_for(app) as http:
            account = await new_account(app, http, "alice")
            conversation = await new_conversation(http, account, model=SLOW_CHAT_MODEL)
            pending = asyncio.create_task(ask(http, account, conversation["id"], "long one"))
            await wait_until(partial(one_running, runtime_of(app).generations))
            async with runtime_of(app).sessionmaker() as session:
                started = (await session.execute(select(Generation))).scalar_one()
            await asyncio.sleep(0.5)  # longer than the liveness: only renewals keep it alive
            assert await runtime_of(app).generations.fail_stale() == 0
            async with runtime_of(app).sessionmaker() as session:
                renewed = (await session.execute(select(Generation))).scalar_one()
            assert renewed.status is GenerationStatus.RUNNING
            assert started.heartbeat_at is not None
            assert renewed.heartbeat_at is not None
            assert renewed.heartbeat_at > started.heartbeat_at
            await http.post(f"/api/generations/{renewed.id}/cancel", headers=account.headers)
            await pending


async def test_a_reply_given_up_meanwhile_is_not_stored(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    """Another process took this one's silence for a crash and failed the generation (this
    process stalled past the liveness period): the late reply must not be stored beside it."""
    conversation = await new_conversation(client, alice, title="Given up", model=SLOW_CHAT_MODEL)
    pending = asyncio.create_task(ask(client, alice, conversation["id"], "long one"))
    await wait_until(partial(one_running, runtime_of(app).generations))
    async with runtime_of(app).sessionmaker.begin() as session:
        generation = (await session.execute(select(Generation))).scalar_one()
        generation.status = GenerationStatus.FAILED
    response = await pending
    assert response.status_code == 502, response.text
    assert "given up" in response.json()["detail"]
    stored = await messages_of(client, alice, conversation["id"])
    assert [m["role"] for m in stored] == ["user"]
