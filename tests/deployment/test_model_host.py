"""One model per host (docs/models.md, docs/deployment.md): a model host holds the weights —
here llama.cpp's own OpenAI-compatible server — and a `genai-service serve` web worker points
its chat and embedding models at it, holding no weights itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from genai_service.inference.local.model_file import default_model_path
from tests.deployment.topology import CHAT_MODEL, EMBEDDING_MODEL, web_worker_environment
from tests.live_server import LiveServer
from tests.llama_cpp_server import LlamaCppServer

pytestmark = pytest.mark.integration

EMBEDDING_DIMENSION = 576


@pytest.fixture
def web_worker(
    tmp_path: Path, database_url: str, model_host: LlamaCppServer
) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path / "web", env=web_worker_environment(model_host, database_url))
    live.start()
    try:
        yield live
    finally:
        live.stop()


def mapped_files(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


async def test_the_v1_api_of_a_web_worker_answers_from_the_model_host(
    web_worker: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=web_worker.base_url) as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"][f"model:{CHAT_MODEL}"] is True

    client = openai.AsyncOpenAI(
        base_url=f"{web_worker.base_url}/v1", api_key="anonymous", max_retries=0
    )
    async with client:
        assert {model.id async for model in client.models.list()} >= {
            CHAT_MODEL,
            EMBEDDING_MODEL,
        }
        question = [{"role": "user", "content": "What is the capital of France?"}]
        completion = await client.chat.completions.create(
            model=CHAT_MODEL,
            messages=question,
            max_tokens=12,
            temperature=0,
        )
        stream = await client.chat.completions.create(
            model=CHAT_MODEL,
            messages=question,
            max_tokens=12,
            temperature=0,
            stream=True,
        )
        streamed = "".join(
            [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
        )
        embeddings = await client.embeddings.create(
            model=EMBEDDING_MODEL, input=["a red apple", "tax law"]
        )
    text = completion.choices[0].message.content
    assert text
    assert streamed == text
    assert [len(item.embedding) for item in embeddings.data] == [EMBEDDING_DIMENSION] * 2

    # The worker holds no weights: neither the GGUF nor llama.cpp nor torch is in its memory.
    assert web_worker.process is not None
    maps = mapped_files(web_worker.process.pid)
    assert str(default_model_path()) not in maps
    assert "libllama" not in maps
    assert "libtorch" not in maps


async def test_a_conversation_turn_on_a_web_worker_is_written_by_the_model_host(
    web_worker: LiveServer, model_host: LlamaCppServer
) -> None:
    answered_before = model_host.chat_requests_answered()
    async with httpx.AsyncClient(base_url=web_worker.base_url, timeout=60) as http:
        created = await http.post("/api/conversations", json={"title": "On the model host"})
        assert created.status_code == 201, created.text
        conversation_id = created.json()["id"]
        turn = await http.post(
            f"/api/conversations/{conversation_id}/messages",
            json={"content": "Hello! Who are you?", "max_tokens": 16, "temperature": 0},
        )
        assert turn.status_code == 201, turn.text
        reply = turn.json()["assistant_message"]
        messages = await http.get(f"/api/conversations/{conversation_id}/messages")
    assert reply["status"] == "completed"
    assert reply["model"] == CHAT_MODEL
    assert reply["content"]
    assert [m["role"] for m in messages.json()["items"]] == ["user", "assistant"]
    assert messages.json()["items"][1]["content"] == reply["content"]
    # The reply, and the title written after the first exchange, came from the host.
    assert model_host.chat_requests_answered() >= answered_before + 1
