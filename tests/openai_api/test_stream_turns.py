"""A reply whose chunks are all ready at once (a server that sent it in one burst) is streamed
in steps of at most `READ_AHEAD` chunks with the event loop's other work in between, not in one
go that holds the loop and every other request until its end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager

from genai_service.app import create_app
from genai_service.inference.registry import ModelRegistry
from genai_service.kit.event_streams import READ_AHEAD
from genai_service.runtime import runtime_of
from genai_service.settings import Settings
from tests.conversations.support import serve
from tests.fakes import FakeEmbeddingModel, ScriptedChatModel

BURST_MODEL = "burst"
WORDS = 200


@pytest.fixture
async def server_url(settings: Settings) -> AsyncIterator[str]:
    """The app on a loopback port in this event loop, with a model that never waits."""
    models = ModelRegistry(
        chat={BURST_MODEL: ScriptedChatModel(reply=" ".join(["word"] * WORDS))},
        embeddings={"embedder": FakeEmbeddingModel()},
        default_chat=BURST_MODEL,
        default_embedding="embedder",
    )
    app = create_app(settings, models=models)
    async with LifespanManager(app, startup_timeout=60):
        await runtime_of(app).models.start()
        async for url in serve(app):
            yield url


REQUESTS = {
    "/v1/chat/completions": {"messages": [{"role": "user", "content": "go"}]},
    "/v1/completions": {"prompt": "go"},
    "/v1/responses": {"input": "go", "max_output_tokens": WORDS},
}


@pytest.mark.parametrize("path", list(REQUESTS))
async def test_a_burst_reply_lets_other_work_run_between_its_steps(
    server_url: str, path: str
) -> None:
    turns = 0

    async def count_turns() -> None:
        nonlocal turns
        while True:
            await asyncio.sleep(0)
            turns += 1

    body = {"model": BURST_MODEL, "max_tokens": WORDS, "stream": True} | REQUESTS[path]
    if path == "/v1/responses":
        del body["max_tokens"]
    turns_at: list[int] = []
    counter = asyncio.create_task(count_turns())
    try:
        async with (
            httpx.AsyncClient(
                base_url=server_url, headers={"Authorization": "Bearer anonymous"}
            ) as http,
            http.stream("POST", path, json=body) as response,
        ):
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line.startswith("data: {"):
                    turns_at.append(turns)
    finally:
        counter.cancel()
    assert len(turns_at) > WORDS
    # Other tasks ran between the steps in which the chunks were written: without the turns,
    # the whole reply is written in one go and arrives with a handful of turns from first to last.
    assert turns_at[-1] - turns_at[0] >= WORDS // READ_AHEAD
