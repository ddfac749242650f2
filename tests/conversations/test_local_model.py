"""Conversations on the real embedded model (SmolLM2 via llama.cpp), built from settings."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from genai_service.app import create_app
from genai_service.inference.local.chat_model import LocalChatModel
from genai_service.runtime import runtime_of
from genai_service.settings import InferenceSettings, LocalChatSettings, ProviderSettings
from tests.conftest import make_settings
from tests.conversations.support import (
    SseEvent,
    ask,
    messages_of,
    new_conversation,
    parse_sse,
    wait_for_generation,
)
from tests.identity import Account
from tests.polling import wait_until

pytestmark = pytest.mark.integration

MODEL = "smollm2"
STORY = "Write a long story about a fox who learns to sail."


@pytest.fixture
async def app(tmp_path: Path, database_url: str) -> AsyncIterator[FastAPI]:
    # One slot and one thread: a held slot would block the next turn, and two llama.cpp threads
    # on two shared cores make run times swing.
    inference = InferenceSettings(
        chat_models={MODEL: [ProviderSettings(kind="local")]},
        embedding_models={},
        default_chat_model=MODEL,
        local_chat=LocalChatSettings(n_ctx=512, n_seq_max=1, n_threads=1, max_queue=4),
    )
    application = create_app(make_settings(tmp_path, database_url, inference=inference))
    async with LifespanManager(application, startup_timeout=120, shutdown_timeout=60):
        await runtime_of(application).models.start()
        yield application


def local_model(app: FastAPI) -> LocalChatModel:
    model = runtime_of(app).models.chat(MODEL)
    assert isinstance(model, LocalChatModel)
    return model


async def first_events(
    server_url: str, account: Account, conversation_id: str, count: int, **turn: object
) -> tuple[str, list[SseEvent]]:
    """Start a streamed turn over a real socket, read `count` events, then drop the connection."""
    events: list[SseEvent] = []
    async with (
        httpx.AsyncClient(base_url=server_url, timeout=60) as http,
        http.stream(
            "POST",
            f"/api/conversations/{conversation_id}/messages",
            json={"content": STORY, "stream": True, **turn},
            headers=account.headers,
        ) as response,
    ):
        assert response.status_code == 200
        block: list[str] = []
        async for line in response.aiter_lines():
            if line:
                block.append(line)
                continue
            events.extend(parse_sse("\n".join(block) + "\n\n")[0])
            block = []
            if len(events) >= count:
                break
        return response.headers["X-Generation-ID"], events


async def test_a_dropped_stream_stores_what_a_full_run_produces(
    client: httpx.AsyncClient, app: FastAPI, server_url: str, alice: Account
) -> None:
    sampling = {"temperature": 0, "seed": 42, "max_tokens": 48}
    full = await new_conversation(client, alice, title="Full")
    complete = await ask(client, alice, full["id"], STORY, **sampling)
    assert complete.status_code == 201, complete.text
    expected = complete.json()["assistant_message"]
    assert expected["completion_tokens"] > 10

    dropped = await new_conversation(client, alice, title="Dropped")
    generation_id, seen = await first_events(server_url, alice, dropped["id"], 4, **sampling)
    assert [event.event for event in seen] == ["generation", "delta", "delta", "delta"]
    generation = await wait_for_generation(client, alice, generation_id, within=120)
    assert generation["status"] == "completed"
    stored = (await messages_of(client, alice, dropped["id"]))[-1]
    assert stored["status"] == "completed"
    assert stored["content"] == expected["content"]
    assert stored["completion_tokens"] == expected["completion_tokens"]
    assert stored["content"].startswith("".join(event.data["text"] for event in seen[1:]))
    await wait_until(lambda: local_model(app).stats.active == 0)


async def test_cancel_frees_the_slot_at_once(
    client: httpx.AsyncClient, app: FastAPI, server_url: str, alice: Account
) -> None:
    model = local_model(app)
    long_turn = await new_conversation(client, alice, title="Long")
    generation_id, _ = await first_events(server_url, alice, long_turn["id"], 3, max_tokens=400)
    assert model.stats.active == 1
    cancelled = await client.post(f"/api/generations/{generation_id}/cancel", headers=alice.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    await wait_until(lambda: model.stats.active == 0, within=5)
    generated = model.stats.generated_tokens
    stored = (await messages_of(client, alice, long_turn["id"]))[-1]
    assert stored["status"] == "cancelled"
    assert stored["content"]
    # The one slot is free: the next turn runs now, not after 400 tokens.
    other = await new_conversation(client, alice, title="Next")
    started = time.monotonic()
    answer = await ask(client, alice, other["id"], "Say hi.", max_tokens=8, temperature=0)
    assert answer.status_code == 201, answer.text
    assert answer.json()["assistant_message"]["status"] == "completed"
    assert model.stats.generated_tokens - generated <= 8 + 1
    assert time.monotonic() - started < 60


async def test_deleting_the_conversation_frees_the_slot_at_once(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    model = local_model(app)
    long_turn = await new_conversation(client, alice, title="Long")
    pending = asyncio.create_task(ask(client, alice, long_turn["id"], STORY, max_tokens=400))
    await wait_until(lambda: model.stats.active == 1 and model.stats.generated_tokens > 2)
    url = f"/api/conversations/{long_turn['id']}"
    assert (await client.delete(url, headers=alice.headers)).status_code == 204
    response = await asyncio.wait_for(pending, 10)
    assert response.status_code == 404, response.text
    assert response.json()["type"].endswith("conversation-deleted")
    await wait_until(lambda: model.stats.active == 0, within=5)
    generated = model.stats.generated_tokens
    # The one slot is free: the next turn runs now, not after 400 tokens.
    other = await new_conversation(client, alice, title="Next")
    answer = await ask(client, alice, other["id"], "Say hi.", max_tokens=8, temperature=0)
    assert answer.status_code == 201, answer.text
    assert model.stats.generated_tokens - generated <= 8 + 1


def engine_metrics(text: str) -> dict[str, float]:
    """The `local_chat_*` samples of a `/metrics` page, by name."""
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("local_chat_")
    }


async def test_metrics_report_what_the_engine_did(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    await wait_until(lambda: local_model(app).stats.active == 0)
    before = engine_metrics((await client.get("/metrics")).text)
    conversation = await new_conversation(client, alice, title="Counted")
    answer = await ask(client, alice, conversation["id"], "Say hi.", max_tokens=8, temperature=0)
    assert answer.status_code == 201, answer.text
    reply = answer.json()["assistant_message"]
    response = await client.get("/metrics")
    assert response.status_code == 200
    after = engine_metrics(response.text)

    def added(name: str) -> float:
        return after[name] - before[name]

    assert added("local_chat_generated_tokens_total") == reply["completion_tokens"]
    assert added("local_chat_prompt_tokens_total") == reply["prompt_tokens"]
    # The prompt in one decode, which gives the first token; then one decode a token, and a
    # reply that ends before its limit decodes the token its end is drawn after.
    assert reply["prompt_tokens"] < LocalChatSettings().n_batch
    ended = 1 if reply["completion_tokens"] < 8 else 0
    assert added("local_chat_decode_steps_total") == reply["completion_tokens"] + ended
    assert after["local_chat_active_sequences"] == 0
    assert after["local_chat_queued_requests"] == 0
    assert after["local_chat_threads"] == 1
