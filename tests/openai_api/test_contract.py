"""The request contract of `/v1`: every field OpenAI defines is honoured, a no-op, or refused.

Each field is sent with a value that is not its neutral one: an honoured field must reach the
model's request, a no-op must answer `200`, a refused one `400` naming it. A field the official
SDK knows that this table does not is a failure: a new OpenAI field is classified on purpose.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from openai.types import completion_create_params as legacy_params
from openai.types.chat import completion_create_params as chat_params

from genai_service.inference.base import ChatRequest, ForcedTool, JsonOutput, Tool
from genai_service.runtime import runtime_of
from tests.conftest import FAKE_CHAT_MODEL
from tests.fakes import ScriptedChatModel

USER = [{"role": "user", "content": "hello there"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def _sampling(request: ChatRequest) -> Any:
    return request.sampling


# field: (value sent, what the model's request must show)
HONOURED: dict[str, tuple[Any, Any]] = {
    "max_tokens": (7, lambda r: _sampling(r).max_tokens == 7),
    "max_completion_tokens": (9, lambda r: _sampling(r).max_tokens == 9),
    "temperature": (0.3, lambda r: _sampling(r).temperature == 0.3),
    "top_p": (0.5, lambda r: _sampling(r).top_p == 0.5),
    "stop": (["END"], lambda r: _sampling(r).stop == ("END",)),
    "seed": (42, lambda r: _sampling(r).seed == 42),
    "presence_penalty": (0.5, lambda r: _sampling(r).presence_penalty == 0.5),
    "frequency_penalty": (0.7, lambda r: _sampling(r).frequency_penalty == 0.7),
    "logit_bias": ({"15": -100}, lambda r: _sampling(r).logit_bias == ((15, -100),)),
    "logprobs": (True, lambda r: _sampling(r).logprobs == 0),
    "response_format": (
        {"type": "json_object"},
        lambda r: r.response_format == JsonOutput(),
    ),
    "tools": ([WEATHER], lambda r: r.tools[0].name == "get_weather" and r.tool_choice == "auto"),
    "top_k": (40, lambda r: _sampling(r).top_k == 40),
    "min_p": (0.1, lambda r: _sampling(r).min_p == 0.1),
    "repetition_penalty": (1.1, lambda r: _sampling(r).repetition_penalty == 1.1),
}
NO_EFFECT: dict[str, Any] = {
    "user": "user-1234",
    "safety_identifier": "abc",
    "metadata": {"purpose": "test"},
    "store": True,
    "service_tier": "default",
    "prediction": {"type": "content", "content": "hello"},
    "prompt_cache_key": "key",
    "prompt_cache_retention": "24h",
    "prompt_cache_options": {"mode": "implicit"},
    "verbosity": "low",
}
REFUSED: dict[str, Any] = {
    "audio": {"voice": "alloy", "format": "mp3"},
    "modalities": ["text", "audio"],
    "reasoning_effort": "high",
    "web_search_options": {},
    "moderation": {"model": "omni-moderation-latest"},
    "functions": [WEATHER["function"]],
    "function_call": "auto",
}
# Honoured only together with another field, or covered by tests of their own.
WITH_OTHERS = {
    "messages",
    "model",
    "n",
    "top_logprobs",
    "tool_choice",
    "parallel_tool_calls",
    "stream_options",
}


def test_every_field_of_the_sdk_is_classified() -> None:
    known = set(HONOURED) | set(NO_EFFECT) | set(REFUSED) | WITH_OTHERS
    sdk = set(chat_params.CompletionCreateParamsBase.__annotations__) | {"stream"}
    assert sdk - known - {"stream"} == set()


def model_of(app: FastAPI) -> ScriptedChatModel:
    model = runtime_of(app).models.chat(FAKE_CHAT_MODEL)
    assert isinstance(model, ScriptedChatModel)
    return model


@pytest.mark.parametrize("field", sorted(HONOURED))
async def test_honoured_fields_reach_the_model(
    field: str, app: FastAPI, client: httpx.AsyncClient
) -> None:
    value, shows = HONOURED[field]
    response = await client.post("/v1/chat/completions", json={"messages": USER, field: value})
    assert response.status_code == 200, response.text
    assert shows(model_of(app).requests[-1])


@pytest.mark.parametrize("field", sorted(NO_EFFECT))
async def test_no_effect_fields_are_accepted(field: str, client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/chat/completions", json={"messages": USER, field: NO_EFFECT[field]}
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("field", sorted(REFUSED))
async def test_refused_fields_are_400_naming_them(field: str, client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/chat/completions", json={"messages": USER, field: REFUSED[field]}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == field
    assert "not supported" in error["message"]


async def test_neutral_values_of_refused_fields_are_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/chat/completions", json={"messages": USER, "modalities": ["text"], "audio": None}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": USER, "frobnicate": 1}, "frobnicate"),
        ({"messages": [{"role": "user", "content": "x", "mood": "happy"}]}, "messages.0.mood"),
        ({"messages": USER, "response_format": {"type": "yaml"}}, "response_format"),
    ],
)
async def test_unknown_fields_are_400_naming_them(
    body: dict[str, Any], param: str, client: httpx.AsyncClient
) -> None:
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param


async def test_images_are_refused_by_name(client: httpx.AsyncClient) -> None:
    content = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]
    response = await client.post(
        "/v1/chat/completions", json={"messages": [{"role": "user", "content": content}]}
    )
    assert response.status_code == 400
    assert "image_url" in response.json()["error"]["message"]


async def test_named_tool_choice_and_parallel_calls_reach_the_model(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    body = {
        "messages": USER,
        "tools": [WEATHER],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False,
    }
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    request = model_of(app).requests[-1]
    assert request.tool_choice == ForcedTool("get_weather")
    assert request.parallel_tool_calls is False
    assert request.tools == (
        Tool(
            name="get_weather",
            parameters=WEATHER["function"]["parameters"],  # type: ignore[index]
            description="The weather of a city",
        ),
    )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tool_choice": "required"}, None),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "x"}}},
            "tool_choice",
        ),
        ({"top_logprobs": 3}, None),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"logit_bias": {"hello": 5}}, "logit_bias"),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": "objekt"}},
                }
            },
            "response_format.json_schema.schema",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": 5}}}]},
            "tools[0].function.parameters",
        ),
        ({"stream_options": {"include_usage": True}}, None),
    ],
)
async def test_inconsistent_requests_are_400(
    body: dict[str, Any], param: str | None, client: httpx.AsyncClient
) -> None:
    response = await client.post("/v1/chat/completions", json={"messages": USER, **body})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


async def test_n_choices_are_separate_and_seeded_apart(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        "/v1/chat/completions", json={"messages": USER, "n": 3, "seed": 10}
    )
    assert response.status_code == 200
    body = response.json()
    assert [choice["index"] for choice in body["choices"]] == [0, 1, 2]
    seeds = sorted(request.sampling.seed for request in model_of(app).requests[-3:])
    assert seeds == [10, 11, 12]
    one = body["choices"][0]["message"]["content"]
    assert body["usage"]["completion_tokens"] == 3 * len(one.split())


async def test_n_choices_stream_with_their_indexes(client: httpx.AsyncClient) -> None:
    chunks = await stream_chunks(client, {"messages": USER, "n": 2, "stream": True})
    texts = {0: "", 1: ""}
    finished = set()
    for chunk in chunks:
        for choice in chunk["choices"]:
            texts[choice["index"]] += choice["delta"].get("content") or ""
            if choice["finish_reason"]:
                finished.add(choice["index"])
    assert finished == {0, 1}
    assert texts[0] == texts[1] == "You said: hello there"


def test_legacy_completions_fields_are_classified() -> None:
    from genai_service.openai_api.completion_schemas import CompletionCreate

    sdk = set(legacy_params.CompletionCreateParamsBase.__annotations__)
    assert sdk - set(CompletionCreate.model_fields) == set()


async def stream_chunks(client: httpx.AsyncClient, body: dict[str, Any]) -> list[dict[str, Any]]:
    import json

    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        lines = [line async for line in response.aiter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    return [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
