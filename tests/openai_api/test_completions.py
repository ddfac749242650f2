"""`/v1/completions` (OpenAI's legacy text completions) over the deterministic fake model."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from genai_service.runtime import runtime_of
from tests.conftest import FAKE_CHAT_MODEL
from tests.fakes import ScriptedChatModel


def model_of(app: FastAPI) -> ScriptedChatModel:
    model = runtime_of(app).models.chat(FAKE_CHAT_MODEL)
    assert isinstance(model, ScriptedChatModel)
    return model


async def test_a_prompt_is_continued_as_it_is(app: FastAPI, client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/completions", json={"prompt": "Once upon a time"})
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "text_completion"
    assert body["id"].startswith("cmpl-")
    assert body["choices"] == [
        {
            "index": 0,
            "text": "You said: Once upon a time",
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    request = model_of(app).requests[-1]
    assert request.prompt == "Once upon a time"
    assert request.messages == ()
    assert request.sampling.max_tokens == 16  # OpenAI's default for this endpoint
    assert body["usage"]["prompt_tokens"] == 4


async def test_several_prompts_with_n_choices_each_are_indexed_prompt_major(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/completions", json={"prompt": ["alpha", "beta gamma"], "n": 2, "seed": 3}
    )
    assert response.status_code == 200
    choices = response.json()["choices"]
    assert [c["text"] for c in choices] == [
        "You said: alpha",
        "You said: alpha",
        "You said: beta gamma",
        "You said: beta gamma",
    ]
    assert [c["index"] for c in choices] == [0, 1, 2, 3]
    usage = response.json()["usage"]
    assert usage["prompt_tokens"] == 1 + 2  # each prompt once


async def test_token_id_prompts(app: FastAPI, client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/completions", json={"prompt": [[1, 2, 3], [4, 5]]})
    assert response.status_code == 200
    # The prompts run concurrently, so they may reach the model in either order; the choices
    # keep the prompts' order.
    assert {r.prompt for r in model_of(app).requests[-2:]} == {(1, 2, 3), (4, 5)}
    texts = [choice["text"] for choice in response.json()["choices"]]
    assert texts == ["You sent 3 tokens", "You sent 2 tokens"]


async def test_echo_puts_the_prompt_first(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/completions", json={"prompt": "Hi", "echo": True})
    assert response.json()["choices"][0]["text"] == "HiYou said: Hi"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "x", "suffix": "end"}, "suffix"),
        ({"prompt": "x", "best_of": 3}, None),
        ({"prompt": "x", "echo": True, "logprobs": 1}, None),
        ({"prompt": "x", "logprobs": 6}, "logprobs"),
        ({"prompt": "x", "frobnicate": True}, "frobnicate"),
        ({"prompt": []}, "prompt"),
    ],
)
async def test_what_cannot_be_honoured_is_400(
    body: dict[str, Any], param: str | None, client: httpx.AsyncClient
) -> None:
    response = await client.post("/v1/completions", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param


async def test_streaming_ends_with_usage_and_done(client: httpx.AsyncClient) -> None:
    body = {"prompt": "stream me", "stream": True, "stream_options": {"include_usage": True}}
    async with client.stream("POST", "/v1/completions", json=body) as response:
        assert response.status_code == 200
        lines = [line async for line in response.aiter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert all(chunk["object"] == "text_completion" for chunk in chunks)
    text = "".join(choice["text"] for chunk in chunks for choice in chunk["choices"])
    assert text == "You said: stream me"
    finishes = [c["finish_reason"] for chunk in chunks for c in chunk["choices"]]
    assert finishes[-1] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 4


async def test_an_unknown_model_is_404_before_the_stream(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/completions", json={"prompt": "x", "model": "nope", "stream": True}
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


async def test_a_model_can_be_read_by_id(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/v1/models/{FAKE_CHAT_MODEL}")
    assert response.status_code == 200
    assert response.json()["id"] == FAKE_CHAT_MODEL
    assert response.json()["object"] == "model"
    missing = await client.get("/v1/models/gpt-17")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "invalid_request_error"
