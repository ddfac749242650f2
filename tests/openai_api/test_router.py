"""The `/v1` surface over the deterministic fake model (the real model: test_openai_client.py)."""

from __future__ import annotations

import base64
import json
import struct

import httpx
import pytest

from tests.conftest import FAKE_CHAT_MODEL, FAKE_EMBEDDING_MODEL
from tests.fakes import FakeEmbeddingModel


def user(content: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": content}]


async def test_chat_completion(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/chat/completions",
        json={"model": FAKE_CHAT_MODEL, "messages": user("hello there"), "max_tokens": 50},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == FAKE_CHAT_MODEL
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"]
    assert choice["finish_reason"] in {"stop", "length"}
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens"] > 0


async def test_streamed_completion_equals_the_non_streamed_one(client: httpx.AsyncClient) -> None:
    request = {"model": FAKE_CHAT_MODEL, "messages": user("tell me more"), "max_tokens": 50}
    whole = (await client.post("/v1/chat/completions", json=request)).json()
    async with client.stream(
        "POST", "/v1/chat/completions", json={**request, "stream": True}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line async for line in response.aiter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert {chunk["id"] for chunk in chunks} == {chunks[0]["id"]}
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks)
    assert text == whole["choices"][0]["message"]["content"]
    assert chunks[-1]["choices"][0]["finish_reason"] == whole["choices"][0]["finish_reason"]
    assert chunks[-1]["usage"] == whole["usage"]


async def test_stream_usage_chunk_when_asked(client: httpx.AsyncClient) -> None:
    request = {
        "model": FAKE_CHAT_MODEL,
        "messages": user("hi"),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    async with client.stream("POST", "/v1/chat/completions", json=request) as response:
        lines = [line async for line in response.aiter_lines() if line.startswith("data: {")]
    last = json.loads(lines[-1].removeprefix("data: "))
    assert last["choices"] == []
    assert last["usage"]["completion_tokens"] > 0


async def test_unknown_model_is_404_in_openai_shape(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/chat/completions", json={"model": "gpt-17", "messages": user("hi")}
    )
    assert response.status_code == 404
    error = response.json()["error"]
    assert "gpt-17" in error["message"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "model_not_found"


async def test_unknown_model_when_streaming_is_404_not_a_broken_stream(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/chat/completions", json={"model": "nope", "messages": user("hi"), "stream": True}
    )
    assert response.status_code == 404
    assert "error" in response.json()


async def test_invalid_parameters_are_400_naming_the_parameter(client: httpx.AsyncClient) -> None:
    cases = [
        ({"messages": []}, "messages"),
        ({"messages": user("x"), "temperature": 3}, "temperature"),
        ({"messages": user("x"), "max_tokens": 0}, "max_tokens"),
        ({"messages": user("x"), "n": 17}, "n"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages.0"),
    ]
    for body, param in cases:
        response = await client.post("/v1/chat/completions", json=body)
        assert response.status_code == 400, body
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["param"] == param, body


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/chat/completions", content=b"{", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] is None


async def test_embeddings_float_and_base64(client: httpx.AsyncClient) -> None:
    request = {"model": FAKE_EMBEDDING_MODEL, "input": ["alpha", "beta gamma"]}
    floats = (await client.post("/v1/embeddings", json=request)).json()
    assert floats["object"] == "list"
    assert [item["index"] for item in floats["data"]] == [0, 1]
    encoded = (
        await client.post("/v1/embeddings", json={**request, "encoding_format": "base64"})
    ).json()
    for plain, packed in zip(floats["data"], encoded["data"], strict=True):
        raw = base64.b64decode(packed["embedding"])
        decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
        assert decoded == pytest.approx(plain["embedding"], abs=1e-6)
    assert floats["usage"]["prompt_tokens"] == 3 + 2 * FakeEmbeddingModel.SPECIAL_TOKENS


async def test_embeddings_reject_empty_input(client: httpx.AsyncClient) -> None:
    for bad in ([], [""], None):
        response = await client.post(
            "/v1/embeddings", json={"model": FAKE_EMBEDDING_MODEL, "input": bad}
        )
        assert response.status_code == 400, bad


async def test_models_lists_chat_and_embedding_models(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/models")).json()
    assert body["object"] == "list"
    assert {model["id"] for model in body["data"]} == {FAKE_CHAT_MODEL, FAKE_EMBEDDING_MODEL}
