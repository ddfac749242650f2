"""`POST /v1/responses` over the fake model: what the model is asked, and the response objects
and stream events that come back (the real model and the `openai` client:
test_responses_openai_client.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import httpx2
import openai
import pytest
from fastapi import FastAPI

from genai_service.inference.base import ChatMessage, ForcedTool, JsonOutput, ToolCall
from genai_service.settings import Settings
from tests.conftest import FAKE_CHAT_MODEL
from tests.openai_api.responses_support import (
    FAILING_CHAT_MODEL,
    FAILURE,
    WEATHER_TOOL,
    create,
    fake_model,
    output_text,
    started_app,
    stream_events,
)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async for application in started_app(settings):
        yield application


CITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
    "additionalProperties": False,
}


async def test_text_input_gives_a_completed_response(client: httpx.AsyncClient) -> None:
    body = await create(client, {"model": FAKE_CHAT_MODEL, "input": "hello there"})
    assert body["id"].startswith("resp_")
    assert body["object"] == "response"
    assert body["status"] == "completed"
    assert body["model"] == FAKE_CHAT_MODEL
    [message] = body["output"]
    assert message["type"] == "message"
    assert message["id"].startswith("msg_")
    assert message["role"] == "assistant"
    assert message["status"] == "completed"
    assert message["content"] == [
        {
            "type": "output_text",
            "text": "You said: hello there",
            "annotations": [],
            "logprobs": None,
        }
    ]
    usage = body["usage"]
    assert usage["input_tokens"] == 2
    assert usage["output_tokens"] == 4
    assert usage["total_tokens"] == 6
    assert body["error"] is None
    assert body["incomplete_details"] is None


async def test_items_and_instructions_reach_the_model_as_chat_messages(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    items = [
        {"role": "developer", "content": "Answer briefly."},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        {
            "type": "message",
            "id": "msg_1",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hello!", "annotations": []}],
        },
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Weather "},
                {"type": "input_text", "text": "in Paris?"},
            ],
        },
        {
            "type": "function_call",
            "call_id": "call_7",
            "name": "get_weather",
            "arguments": '{"city": "Paris"}',
        },
        {"type": "function_call_output", "call_id": "call_7", "output": "sunny, 21 C"},
    ]
    await create(client, {"input": items, "instructions": "You are a weather bot."})
    assert fake_model(app).requests[-1].messages == [
        ChatMessage("system", "You are a weather bot."),
        ChatMessage("system", "Answer briefly."),
        ChatMessage("user", "Hi"),
        ChatMessage("assistant", "Hello!"),
        ChatMessage("user", "Weather in Paris?"),
        ChatMessage(
            "assistant", "", tool_calls=(ToolCall("call_7", "get_weather", '{"city": "Paris"}'),)
        ),
        ChatMessage("tool", "sunny, 21 C", tool_call_id="call_7", name="get_weather"),
    ]


async def test_calls_after_assistant_text_join_its_message(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    items = [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": "Let me look."},
        {"type": "function_call", "call_id": "a", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call", "call_id": "b", "name": "get_weather", "arguments": "{}"},
        {
            "type": "function_call_output",
            "call_id": "a",
            "output": [{"type": "input_text", "text": "sun"}],
        },
        {"type": "function_call_output", "call_id": "b", "output": "rain"},
    ]
    await create(client, {"input": items})
    messages = fake_model(app).requests[-1].messages
    assert messages[1] == ChatMessage(
        "assistant",
        "Let me look.",
        tool_calls=(ToolCall("a", "get_weather", "{}"), ToolCall("b", "get_weather", "{}")),
    )
    assert [(m.role, m.content, m.tool_call_id) for m in messages[2:]] == [
        ("tool", "sun", "a"),
        ("tool", "rain", "b"),
    ]


async def test_sampling_fields_reach_the_model(app: FastAPI, client: httpx.AsyncClient) -> None:
    body = await create(
        client, {"input": "hi", "temperature": 0.2, "top_p": 0.5, "max_output_tokens": 7}
    )
    sampling = fake_model(app).requests[-1].sampling
    assert (sampling.temperature, sampling.top_p, sampling.max_tokens) == (0.2, 0.5, 7)
    assert (body["temperature"], body["top_p"], body["max_output_tokens"]) == (0.2, 0.5, 7)
    await create(client, {"input": "hi"})
    defaults = fake_model(app).requests[-1].sampling
    # OpenAI's defaults, and the same reply budget as /v1/chat/completions.
    assert (defaults.temperature, defaults.top_p, defaults.max_tokens) == (1.0, 1.0, 256)
    assert defaults.logprobs is None


async def test_logprobs_are_asked_by_include_or_top_logprobs(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    cases: list[tuple[dict[str, Any], int | None]] = [
        ({"include": ["message.output_text.logprobs"]}, 0),
        ({"include": ["message.output_text.logprobs"], "top_logprobs": 3}, 3),
        ({"top_logprobs": 2}, 2),
        ({"include": ["reasoning.encrypted_content"]}, None),
    ]
    for extra, expected in cases:
        body = await create(client, {"input": "hi", **extra})
        assert fake_model(app).requests[-1].sampling.logprobs == expected, extra
        logprobs = body["output"][0]["content"][0]["logprobs"]
        assert (logprobs is not None) == (expected is not None), extra


async def test_text_format_constrains_the_reply(app: FastAPI, client: httpx.AsyncClient) -> None:
    text_format = {"type": "json_schema", "name": "city", "schema": CITY_SCHEMA, "strict": True}
    model = fake_model(app)
    model.reply = '{"city": "Paris", "population": 2100000}'
    body = await create(client, {"input": "Paris?", "text": {"format": text_format}})
    assert model.requests[-1].response_format == JsonOutput(schema=CITY_SCHEMA, name="city")
    assert json.loads(output_text(body)) == {"city": "Paris", "population": 2100000}
    assert body["text"]["format"] == {**text_format, "description": None}
    await create(client, {"input": "x", "text": {"format": {"type": "json_object"}}})
    assert model.requests[-1].response_format == JsonOutput()
    plain = await create(client, {"input": "x", "text": {"format": {"type": "text"}}})
    assert model.requests[-1].response_format is None
    assert plain["text"]["format"] == {"type": "text"}


async def test_required_tool_gives_a_function_call_item(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    model = fake_model(app)
    model.call_arguments = '{"city": "Paris"}'
    body = await create(
        client,
        {"input": "Weather in Paris?", "tools": [WEATHER_TOOL], "tool_choice": "required"},
    )
    request = model.requests[-1]
    assert [(tool.name, tool.description) for tool in request.tools] == [
        ("get_weather", "The weather in a city.")
    ]
    assert request.tools[0].parameters == WEATHER_TOOL["parameters"]
    assert request.tool_choice == "required"
    [call] = body["output"]
    assert call["type"] == "function_call"
    assert call["id"].startswith("fc_")
    assert call["call_id"]
    assert call["name"] == "get_weather"
    assert json.loads(call["arguments"]) == {"city": "Paris"}
    assert call["status"] == "completed"
    assert body["status"] == "completed"
    assert body["tools"] == [{**WEATHER_TOOL, "strict": None}]
    assert body["tool_choice"] == "required"


async def test_tool_choice_forms(app: FastAPI, client: httpx.AsyncClient) -> None:
    other = {**WEATHER_TOOL, "name": "get_time"}
    tools = [WEATHER_TOOL, other]
    requests = fake_model(app).requests
    await create(client, {"input": "x", "tools": tools})
    await create(client, {"input": "x", "tools": tools, "parallel_tool_calls": False})
    named = {"type": "function", "name": "get_time"}
    forced = await create(client, {"input": "x", "tools": tools, "tool_choice": named})
    allowed = {"type": "allowed_tools", "mode": "required", "tools": [named]}
    body = await create(client, {"input": "x", "tools": tools, "tool_choice": allowed})
    assert [request.tool_choice for request in requests[-4:]] == [
        "auto",
        "auto",
        ForcedTool("get_time"),
        "required",
    ]
    assert [request.parallel_tool_calls for request in requests[-4:]] == [True, False, True, True]
    assert forced["output"][0]["name"] == "get_time"
    assert [tool.name for tool in requests[-1].tools] == ["get_time"]
    assert body["tool_choice"] == allowed
    assert len(body["tools"]) == 2


async def test_function_call_loop_with_previous_response_id(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    model = fake_model(app)
    model.call_arguments = '{"city": "Paris"}'
    question = {"input": "Weather in Paris?", "tools": [WEATHER_TOOL], "tool_choice": "required"}
    first = await create(client, question)
    [call] = first["output"]
    answer = await create(
        client,
        {
            "previous_response_id": first["id"],
            "tools": [WEATHER_TOOL],
            "input": [
                {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}
            ],
        },
    )
    assert model.requests[-1].messages == [
        ChatMessage("user", "Weather in Paris?"),
        ChatMessage(
            "assistant",
            "",
            tool_calls=(ToolCall(call["call_id"], "get_weather", call["arguments"]),),
        ),
        ChatMessage("tool", "sunny", tool_call_id=call["call_id"], name="get_weather"),
    ]
    assert answer["output"][0]["type"] == "message"
    assert output_text(answer) == "You said: Weather in Paris?"
    assert answer["previous_response_id"] == first["id"]


async def test_streamed_text_events_build_the_response(client: httpx.AsyncClient) -> None:
    events = await stream_events(client, {"input": "tell me more"})
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    types = [event["type"] for event in events]
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 5,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    created, final = events[0]["response"], events[-1]["response"]
    assert created["status"] == "in_progress"
    assert created["output"] == []
    assert created["id"] == final["id"]
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert deltas == "You said: tell me more" == output_text(final)
    item_id = events[2]["item"]["id"]
    assert {e["item_id"] for e in events if "item_id" in e} == {item_id}
    assert events[-2]["item"] == final["output"][0]
    assert final["status"] == "completed"
    assert final["usage"]["output_tokens"] == 5
    stored = await client.get(f"/v1/responses/{final['id']}")
    assert stored.json() == final


async def test_streamed_function_call_events(app: FastAPI, client: httpx.AsyncClient) -> None:
    fake_model(app).call_arguments = '{"city": "Rome"}'
    events = await stream_events(
        client, {"input": "Rome?", "tools": [WEATHER_TOOL], "tool_choice": "required"}
    )
    assert [event["type"] for event in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    added = events[2]["item"]
    assert (added["type"], added["name"], added["arguments"], added["status"]) == (
        "function_call",
        "get_weather",
        "",
        "in_progress",
    )
    deltas = "".join(e["delta"] for e in events[3:5])
    assert deltas == events[5]["arguments"] == '{"city": "Rome"}'
    assert events[6]["item"] == events[-1]["response"]["output"][0]
    assert events[6]["item"]["arguments"] == '{"city": "Rome"}'


async def test_max_output_tokens_makes_the_response_incomplete(client: httpx.AsyncClient) -> None:
    body = await create(client, {"input": "one two three four", "max_output_tokens": 2})
    assert body["status"] == "incomplete"
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert body["output"][0]["status"] == "incomplete"
    assert output_text(body) == "You said:"
    events = await stream_events(client, {"input": "one two three", "max_output_tokens": 2})
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert events[-2]["item"]["status"] == "incomplete"


async def test_errors_before_the_first_event_are_http_statuses(client: httpx.AsyncClient) -> None:
    cases = [
        ({"model": "gpt-17", "input": "hi"}, 404, "model_not_found", None),
        (
            {"input": "hi", "previous_response_id": "resp_nope"},
            404,
            "response_not_found",
            "previous_response_id",
        ),
        ({"input": "word " * 5000}, 400, "context_length_exceeded", None),
    ]
    for body, status, code, param in cases:
        for stream in (False, True):
            response = await client.post("/v1/responses", json={**body, "stream": stream})
            assert response.status_code == status, (body, stream)
            error = response.json()["error"]
            assert (error["code"], error["param"]) == (code, param), (body, stream)


async def test_a_model_failure_mid_stream_ends_with_response_failed(
    client: httpx.AsyncClient,
) -> None:
    events = await stream_events(client, {"model": FAILING_CHAT_MODEL, "input": "hi"})
    types = [event["type"] for event in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types.count("response.output_text.delta") == 2
    assert types[-1] == "response.failed"
    failed = events[-1]["response"]
    assert failed["status"] == "failed"
    assert failed["error"] == {"code": "server_error", "message": FAILURE}
    assert failed["output"][0]["status"] == "incomplete"
    assert output_text(failed) == "partial reply"
    stored = await client.get(f"/v1/responses/{failed['id']}")
    assert stored.json() == failed


async def test_the_sdk_can_keep_the_history_itself(app: FastAPI) -> None:
    """Without `previous_response_id`: the `openai` client sends the output items it got back
    as input, with the function's output, as the Agents SDK does with `store=False`."""
    fake_model(app).call_arguments = '{"city": "Oslo"}'
    # The client's own HTTP library (httpx2), over the app in process.
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as http:
        sdk = openai.AsyncOpenAI(
            base_url="http://testserver/v1", api_key="anonymous", http_client=http
        )
        tools: Any = [WEATHER_TOOL]
        history: list[Any] = [{"role": "user", "content": "Weather in Oslo?"}]
        asked = await sdk.responses.create(
            input=history, tools=tools, tool_choice="required", store=False
        )
        [call] = asked.output
        assert call.type == "function_call"
        history += [item.model_dump(exclude_unset=True) for item in asked.output]
        history.append({"type": "function_call_output", "call_id": call.call_id, "output": "-3 C"})
        answered = await sdk.responses.create(input=history, tools=tools, store=False)
        history += answered.output
        history.append({"role": "user", "content": "Thanks!"})
        again = await sdk.responses.create(input=history, store=False)
    messages = fake_model(app).requests[-1].messages
    assert [message.role for message in messages] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    assert messages[1].tool_calls[0].arguments == '{"city": "Oslo"}'
    assert messages[3].content == answered.output_text == "You said: Weather in Oslo?"
    assert again.output_text == "You said: Thanks!"
