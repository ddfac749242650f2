"""The request contract of `/v1/responses`: every field of OpenAI's `ResponseCreateParams` is
honoured, accepted as a documented no-op, or refused with a `400` naming it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from openai.types.responses.response_create_params import (
    ResponseCreateParamsBase,
    ResponseCreateParamsStreaming,
)

from genai_service.openai_api.responses.schemas import ResponseCreate
from tests.openai_api.responses_support import WEATHER_TOOL, create, fake_model

OPENAI_FIELDS = set(ResponseCreateParamsBase.__annotations__) | set(
    ResponseCreateParamsStreaming.__annotations__
)
DOCS = Path(__file__).parents[2] / "docs" / "models.md"

NO_OPS: dict[str, Any] = {
    "user": "user-42",
    "safety_identifier": "hash-of-user",
    "service_tier": "auto",
    "prompt_cache_key": "my-app",
    "prompt_cache_retention": "24h",
    "prompt_cache_options": {"ttl": "30m"},
    "max_tool_calls": 3,
    "image": {"context_compression": "auto"},
    "include": ["reasoning.encrypted_content", "web_search_call.action.sources"],
    "reasoning": {"effort": None, "summary": None},
    "background": False,
    "context_management": [],
    "access_programs": {"cyber": "standard"},
    "metadata": {"app": "tests"},
    "text": {"verbosity": "low"},
    "truncation": "disabled",
}
REFUSED: list[tuple[str, Any]] = [
    ("background", True),
    ("background_options", {"completion_window": "2h"}),
    ("conversation", "conv_123"),
    ("context_management", [{"type": "compaction", "compact_threshold": 1000}]),
    ("prompt", {"id": "pmpt_123"}),
    ("moderation", {"model": "omni-moderation-latest"}),
    ("access_programs", {"cyber": "daybreak_red"}),
    ("reasoning", {"effort": "high"}),
]


def responses_section() -> str:
    text = DOCS.read_text()
    start = text.index("## The Responses API")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_every_openai_field_is_declared_and_documented() -> None:
    declared = set(ResponseCreate.model_fields)
    assert OPENAI_FIELDS - declared == set()
    section = responses_section()
    assert [field for field in sorted(OPENAI_FIELDS) if f"`{field}`" not in section] == []


async def test_no_op_fields_are_accepted_and_change_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await create(client, {"input": "hi"})
    plain = fake_model(app).requests[-1]
    body = await create(client, {"input": "hi", **NO_OPS})
    assert fake_model(app).requests[-1] == plain
    assert (body["user"], body["safety_identifier"], body["metadata"]) == (
        "user-42",
        "hash-of-user",
        {"app": "tests"},
    )
    events = [
        line
        async for line in (
            await client.send(
                client.build_request(
                    "POST",
                    "/v1/responses",
                    json={
                        "input": "hi",
                        "stream": True,
                        "stream_options": {"include_obfuscation": False},
                    },
                ),
                stream=True,
            )
        ).aiter_lines()
        if line.startswith("event: ")
    ]
    assert events[-1] == "event: response.completed"


@pytest.mark.parametrize(("field", "value"), REFUSED)
async def test_fields_this_server_cannot_honour_are_refused(
    client: httpx.AsyncClient, field: str, value: Any
) -> None:
    response = await client.post("/v1/responses", json={"input": "hi", field: value})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == field
    assert error["type"] == "invalid_request_error"
    assert "not supported" in error["message"]


async def test_fields_openai_does_not_define_are_refused(client: httpx.AsyncClient) -> None:
    for field, value in (("messages", []), ("max_tokens", 5), ("top_k", 5), ("n", 2)):
        response = await client.post("/v1/responses", json={"input": "hi", field: value})
        assert response.status_code == 400, field
        assert response.json()["error"]["param"] == field


async def test_media_input_is_refused_by_name(client: httpx.AsyncClient) -> None:
    parts: list[dict[str, Any]] = [
        {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "auto"},
        {"type": "input_file", "file_id": "file_123"},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
    ]
    for part in parts:
        message = {"role": "user", "content": [{"type": "input_text", "text": "look"}, part]}
        response = await client.post("/v1/responses", json={"input": [message]})
        assert response.status_code == 400, part
        error = response.json()["error"]
        assert error["param"] == "input.0.content.1"
        assert part["type"] in error["message"]
    output = {"type": "function_call_output", "call_id": "c", "output": [parts[0]]}
    response = await client.post("/v1/responses", json={"input": [output]})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "input.0.output.0"


async def test_item_types_other_than_messages_and_function_calls_are_refused_by_name(
    client: httpx.AsyncClient,
) -> None:
    items: list[dict[str, Any]] = [
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "item_reference", "id": "msg_1"},
        {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {}},
        {"type": "computer_call_output", "call_id": "c", "output": {}},
    ]
    for item in items:
        response = await client.post("/v1/responses", json={"input": [item]})
        assert response.status_code == 400, item
        error = response.json()["error"]
        assert error["param"] == "input.0"
        assert f"'{item['type']}'" in error["message"]


async def test_an_item_type_that_is_not_a_string_is_refused(client: httpx.AsyncClient) -> None:
    for kind in ({"nested": "message"}, ["message"], 7, None):
        response = await client.post("/v1/responses", json={"input": [{"type": kind}]})
        assert response.status_code == 400, kind
        error = response.json()["error"]
        assert error["param"] == "input.0"
        assert "must be a string" in error["message"]


async def test_built_in_tools_are_refused_by_name(client: httpx.AsyncClient) -> None:
    for tool in (
        {"type": "web_search"},
        {"type": "file_search", "vector_store_ids": ["vs_1"]},
        {"type": "mcp", "server_label": "x", "server_url": "https://example.com"},
        {"type": "code_interpreter", "container": {"type": "auto"}},
    ):
        response = await client.post(
            "/v1/responses", json={"input": "hi", "tools": [WEATHER_TOOL, tool]}
        )
        assert response.status_code == 400, tool
        error = response.json()["error"]
        assert error["param"] == "tools.1"
        assert f"'{tool['type']}'" in error["message"]
    for choice in ({"type": "web_search_preview"}, {"type": "mcp", "server_label": "x"}):
        response = await client.post(
            "/v1/responses", json={"input": "hi", "tools": [WEATHER_TOOL], "tool_choice": choice}
        )
        assert response.status_code == 400, choice
        assert response.json()["error"]["param"] == "tool_choice"


async def test_function_tool_fields_this_server_cannot_honour_are_refused(
    client: httpx.AsyncClient,
) -> None:
    for field, value in (
        ("defer_loading", True),
        ("async", True),
        ("allowed_callers", ["programmatic"]),
    ):
        tool = {**WEATHER_TOOL, field: value}
        response = await client.post("/v1/responses", json={"input": "hi", "tools": [tool]})
        assert response.status_code == 400, field
        assert response.json()["error"]["param"] == f"tools.0.{field}"
    tool = {**WEATHER_TOOL, "strict": True, "output_schema": {"type": "string"}}
    await create(client, {"input": "hi", "tools": [tool], "tool_choice": "required"})


async def test_invalid_tools_and_formats_are_400_naming_them(client: httpx.AsyncClient) -> None:
    broken_schema = {"type": "objekt"}
    cases: list[tuple[dict[str, Any], str | None]] = [
        (
            {"text": {"format": {"type": "json_schema", "name": "x", "schema": broken_schema}}},
            "text.format.schema",
        ),
        (
            {"tools": [WEATHER_TOOL, {**WEATHER_TOOL, "name": "b", "parameters": broken_schema}]},
            "tools[1].parameters",
        ),
        ({"tools": [WEATHER_TOOL, WEATHER_TOOL]}, "tools[1].name"),
        (
            {"tools": [WEATHER_TOOL], "tool_choice": {"type": "function", "name": "nope"}},
            "tool_choice.name",
        ),
        (
            {
                "tools": [WEATHER_TOOL],
                "tool_choice": {
                    "type": "allowed_tools",
                    "mode": "auto",
                    "tools": [{"type": "function", "name": "nope"}],
                },
            },
            "tool_choice.tools[0].name",
        ),
        ({"tool_choice": "required"}, None),
        ({"stream_options": {"include_obfuscation": False}}, None),
        ({"temperature": 2.5}, "temperature"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"top_logprobs": 21}, "top_logprobs"),
        ({"include": ["message.everything"]}, "include.0"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
    ]
    for extra, param in cases:
        response = await client.post("/v1/responses", json={"input": "hi", **extra})
        assert response.status_code == 400, extra
        assert response.json()["error"]["param"] == param, extra


async def test_input_is_required_and_not_empty(client: httpx.AsyncClient) -> None:
    bodies: list[dict[str, Any]] = [{}, {"input": []}, {"input": [{"role": "wizard"}]}]
    for body in bodies:
        response = await client.post("/v1/responses", json=body)
        assert response.status_code == 400, body
        assert response.json()["error"]["param"].startswith("input"), body
