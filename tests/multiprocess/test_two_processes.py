"""Two `genai-service serve` processes on one PostgreSQL and one Redis behave as one: a stream
started on A resumes on B, a cancel on B stops A's model, a WebSocket on B follows A's turn, a
key revoked on A is refused on B, and a `genai-service worker` ingests what A received."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import websockets.asyncio.client

from genai_service.runtime import runtime_of
from tests.conversations.support import LONG_REPLY, SLOW_CHAT_MODEL, SseEvent, parse_sse
from tests.fakes import ScriptedChatModel
from tests.identity import Account, bearer
from tests.multiprocess.conftest import Deployment
from tests.multiprocess.harness import WorkerProcess, fetch_value, register, sse_lines

WORDS = len(LONG_REPLY.split())


async def read_events(lines: Any, count: int) -> list[SseEvent]:
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
            break
    return events


async def new_conversation(base_url: str, account: Account, **fields: Any) -> str:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        response = await http.post("/api/conversations", json=fields, headers=account.headers)
    assert response.status_code == 201, response.text
    conversation_id: str = response.json()["id"]
    return conversation_id


async def get_json(base_url: str, path: str, account: Account) -> Any:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        response = await http.get(path, headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()


def host_model(deployment: Deployment) -> ScriptedChatModel:
    model = runtime_of(deployment.model_host.app).models.chat(SLOW_CHAT_MODEL)
    assert isinstance(model, ScriptedChatModel)
    return model


def turn(content: str) -> dict[str, Any]:
    return {"content": content, "stream": True}


async def test_a_stream_started_on_a_resumes_on_b_after_the_last_event_id(
    deployment: Deployment,
) -> None:
    a, b = deployment.a.base_url, deployment.b.base_url
    alice = await register(a, "alice")
    conversation = await new_conversation(a, alice, model=SLOW_CHAT_MODEL, title="Titled")
    path = f"/api/conversations/{conversation}/messages"
    async with sse_lines(a, "POST", path, json=turn("long one"), headers=alice.headers) as (
        response,
        lines,
    ):
        assert response.status_code == 200
        generation_id = response.headers["X-Generation-ID"]
        seen = await read_events(lines, 4)
    events_path = f"/api/generations/{generation_id}/events"
    status = await get_json(b, f"/api/generations/{generation_id}", alice)
    assert status["status"] == "running"  # what follows on B is live, not a replay of an end
    resume = {**alice.headers, "Last-Event-ID": str(seen[-1].id)}
    async with sse_lines(b, "GET", events_path, headers=resume) as (resumed, rest_lines):
        assert resumed.status_code == 200
        first = (await read_events(rest_lines, 1))[0]
        assert (await get_json(a, f"/api/generations/{generation_id}", alice))["status"] == (
            "running"
        )
        rest = [first, *await read_events(rest_lines, 1000)]
    assert rest[0].id == seen[-1].id + 1
    assert rest[-1].event == "done"
    async with httpx.AsyncClient(base_url=b, timeout=30) as http:
        whole, _ = parse_sse((await http.get(events_path, headers=alice.headers)).text)
    assert [(e.id, e.event, e.data) for e in [*seen, *rest]] == [
        (e.id, e.event, e.data) for e in whole
    ]
    assert [e.id for e in whole] == list(range(1, len(whole) + 1))
    assert "".join(e.data["text"] for e in whole if e.event == "delta") == LONG_REPLY


async def test_a_cancel_on_b_stops_the_model_on_a_and_stores_the_partial_reply_once(
    deployment: Deployment,
) -> None:
    a, b = deployment.a.base_url, deployment.b.base_url
    alice = await register(a, "alice")
    conversation = await new_conversation(a, alice, model=SLOW_CHAT_MODEL, title="Titled")
    path = f"/api/conversations/{conversation}/messages"
    async with sse_lines(a, "POST", path, json=turn("long one"), headers=alice.headers) as (
        response,
        lines,
    ):
        generation_id = response.headers["X-Generation-ID"]
        await read_events(lines, 4)
        asked = time.monotonic()
        async with httpx.AsyncClient(base_url=b, timeout=30) as http:
            cancelled = await http.post(
                f"/api/generations/{generation_id}/cancel", headers=alice.headers
            )
        took = time.monotonic() - asked
        assert cancelled.status_code == 200, cancelled.text
        rest = await read_events(lines, 1000)
    assert took < 2
    assert cancelled.json()["status"] == "cancelled"
    assert rest[-1].event == "done"
    assert rest[-1].data["status"] == "cancelled"
    sent = host_model(deployment).chunks_sent
    messages = await get_json(b, f"/api/conversations/{conversation}/messages", alice)
    replies = [m for m in messages["items"] if m["role"] == "assistant"]
    assert len(replies) == 1
    assert replies[0]["status"] == "cancelled"
    assert (
        replies[0]["id"]
        == cancelled.json()["assistant_message_id"]
        == rest[-1].data["message"]["id"]
    )
    assert LONG_REPLY.startswith(replies[0]["content"])
    assert 0 < len(replies[0]["content"].split()) < WORDS
    # The model host stopped writing (a titled conversation asks it for no title afterwards):
    # at most the chunk under way when the connection closed.
    await asyncio.sleep(0.5)
    assert host_model(deployment).chunks_sent <= sent + 1


async def test_a_websocket_on_b_follows_and_cancels_a_turn_generating_on_a(
    deployment: Deployment,
) -> None:
    a, b = deployment.a.base_url, deployment.b.base_url
    alice = await register(a, "alice")
    conversation = await new_conversation(a, alice, model=SLOW_CHAT_MODEL, title="Titled")
    path = f"/api/conversations/{conversation}/messages"
    async with sse_lines(a, "POST", path, json=turn("long one"), headers=alice.headers) as (
        response,
        lines,
    ):
        generation_id = response.headers["X-Generation-ID"]
        await read_events(lines, 2)
    socket_url = f"ws{b.removeprefix('http')}/api/conversations/{conversation}/ws"
    async with websockets.asyncio.client.connect(
        f"{socket_url}?token={alice.access_token}"
    ) as socket:
        await socket.send(
            json.dumps({"type": "follow", "generation_id": generation_id, "after": 1})
        )
        frames = [json.loads(await asyncio.wait_for(socket.recv(), 10)) for _ in range(3)]
        assert [frame["id"] for frame in frames] == [2, 3, 4]
        assert all(frame["type"] == "delta" for frame in frames)
        await socket.send(json.dumps({"type": "cancel"}))
        while frames[-1]["type"] not in {"done", "error"}:
            frames.append(json.loads(await asyncio.wait_for(socket.recv(), 10)))
    assert frames[-1]["data"]["status"] == "cancelled"
    stored = frames[-1]["data"]["message"]
    assert stored["status"] == "cancelled"
    assert 0 < len(stored["content"].split()) < WORDS
    generation = await get_json(a, f"/api/generations/{generation_id}", alice)
    assert generation["status"] == "cancelled"


async def test_a_key_revoked_on_a_is_refused_on_b_at_the_next_request(
    deployment: Deployment,
) -> None:
    a, b = deployment.a.base_url, deployment.b.base_url
    alice = await register(a, "alice")
    async with (
        httpx.AsyncClient(base_url=a, timeout=30) as on_a,
        httpx.AsyncClient(base_url=b, timeout=30) as on_b,
    ):
        key = (await on_a.post("/api/keys", json={"name": "k"}, headers=alice.headers)).json()
        for _ in range(2):  # the second is answered from B's cache
            assert (await on_b.get("/v1/models", headers=bearer(key["secret"]))).status_code == 200
        revoked = await on_a.delete(f"/api/keys/{key['id']}", headers=alice.headers)
        assert revoked.status_code == 204
        refused = await on_b.get("/v1/models", headers=bearer(key["secret"]))
        assert refused.status_code == 401
        assert (await on_b.get("/v1/models", headers=alice.headers)).status_code == 200


async def test_a_document_uploaded_to_a_is_ingested_by_a_worker_process(
    deployment: Deployment,
) -> None:
    a, b = deployment.a.base_url, deployment.b.base_url
    alice = await register(a, "alice")
    worker = WorkerProcess(deployment.data_dir, deployment.env)
    await asyncio.to_thread(worker.start)
    try:
        async with httpx.AsyncClient(base_url=a, timeout=30) as http:
            text = "Redis streams carry the events of every generation. " * 40
            uploaded = await http.post(
                "/api/documents",
                files={"file": ("notes.txt", text.encode(), "text/plain")},
                headers=alice.headers,
            )
        assert uploaded.status_code == 202, uploaded.text
        document_id = uploaded.json()["id"]
        states: list[str] = []

        async def indexed() -> bool:
            document = await get_json(b, f"/api/documents/{document_id}", alice)
            states.append(document["status"])
            return document["status"] in {"indexed", "failed"}

        deadline = time.monotonic() + 60
        while not await indexed():
            assert time.monotonic() < deadline, f"not ingested in time: {states[-3:]}"
            await asyncio.sleep(0.2)
        assert states[-1] == "indexed", deployment.data_dir.joinpath("worker.log").read_text()
        ingested_once = await fetch_value(
            deployment.database_url,
            "SELECT count(*) FROM documents WHERE id = $1 AND attempts = 1",
            uuid.UUID(document_id),
        )
        assert ingested_once == 1
    finally:
        await asyncio.to_thread(worker.stop)
