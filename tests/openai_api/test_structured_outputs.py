"""Structured outputs, tools, logprobs and legacy completions on the real embedded model, through
the official `openai` client against a live server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jsonschema
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam
from pydantic import BaseModel, Field

from genai_service.settings import DEFAULT_CHAT_MODEL
from tests.live_server import LiveServer
from tests.openai_api.json_schemas import SCHEMAS

pytestmark = pytest.mark.integration

WEATHER_TOOL: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 30},
                "unit": {"enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
        },
    },
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(Path(tmp_path_factory.mktemp("structured")) / "data")
    live.start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def client(server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="anonymous", max_retries=0)


def _structured(client: openai.OpenAI, name: str, schema: dict[str, Any]) -> tuple[str, Any]:
    completion = client.chat.completions.create(
        model=DEFAULT_CHAT_MODEL,
        messages=[{"role": "user", "content": f"Give an example of {name.replace('_', ' ')}."}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": True},
        },
        max_tokens=200,
        temperature=0,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop", (name, choice.message.content)
    return name, json.loads(choice.message.content or "")


def test_twenty_schemas_each_give_valid_json(client: openai.OpenAI) -> None:
    assert len(SCHEMAS) == 20
    with ThreadPoolExecutor(max_workers=8) as pool:  # the engine decodes them as one batch
        results = list(pool.map(lambda item: _structured(client, *item), SCHEMAS.items()))
    for name, value in results:
        jsonschema.validate(value, SCHEMAS[name])


def test_json_object_mode_gives_an_object(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=DEFAULT_CHAT_MODEL,
        messages=[{"role": "user", "content": 'Reply with JSON like {"animal": "cat"}.'}],
        response_format={"type": "json_object"},
        max_tokens=120,
        temperature=0,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop", choice.message.content
    assert isinstance(json.loads(choice.message.content or ""), dict)


class Pet(BaseModel):
    name: str = Field(max_length=20)
    species: str = Field(max_length=20)
    legs: int


def test_parse_with_a_pydantic_model(client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(
        model=DEFAULT_CHAT_MODEL,
        messages=[{"role": "user", "content": "Invent a pet."}],
        response_format=Pet,
        max_tokens=100,
        temperature=0,
    )
    pet = completion.choices[0].message.parsed
    assert isinstance(pet, Pet)
    assert pet.name


def test_a_streamed_structured_reply_parses(client: openai.OpenAI) -> None:
    schema = SCHEMAS["nested_object"]
    stream = client.chat.completions.create(
        model=DEFAULT_CHAT_MODEL,
        messages=[{"role": "user", "content": "Who lives where?"}],
        response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": schema}},
        max_tokens=100,
        temperature=0,
        stream=True,
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    jsonschema.validate(json.loads(text), schema)


def test_unsupported_schema_keywords_are_refused_not_ignored(client: openai.OpenAI) -> None:
    schema = {"type": "object", "properties": {"age": {"type": "integer", "minimum": 0}}}
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model=DEFAULT_CHAT_MODEL,
            messages=[{"role": "user", "content": "How old?"}],
            response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
        )
    assert "minimum" in str(raised.value)
    assert raised.value.body["param"] == "response_format.json_schema.schema"  # type: ignore[index]


def test_required_tool_choice_gives_a_valid_call(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=DEFAULT_CHAT_MODEL,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],
        tool_choice="required",
        max_tokens=100,
        temperature=0,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert calls
    for call in calls:
        assert call.type == "function"
        assert call.id.startswith("call_")
        assert call.function.name == "get_weather"
        jsonschema.validate(
            json.loads(call.function.arguments),
            WEATHER_TOOL["function"]["parameters"],  # type: ignore[typeddict-item]
        )


def test_an_agent_loop_runs_to_a_final_answer(client: openai.OpenAI) -> None:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "What is the weather in Paris?"}
    ]
    first = client.chat.completions.create(
        model=DEFAULT_CHAT_MODEL,
        messages=messages,
        tools=[WEATHER_TOOL],
        tool_choice="required",
        parallel_tool_calls=False,
        max_tokens=100,
        temperature=0,
    )
    call = (first.choices[0].message.tool_calls or [])[0]
    assert len(first.choices[0].message.tool_calls or []) == 1
    messages.append(first.choices[0].message.model_dump(exclude_none=True))  # type: ignore[arg-type]
    messages.append(
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21, "sky": "clear"}'}
    )
    final = client.chat.completions.create(
        model=DEFAULT_CHAT_MODEL,
        messages=messages,
        tools=[WEATHER_TOOL],
        tool_choice="none",
        max_tokens=60,
        temperature=0,
    )
    assert final.choices[0].finish_reason in {"stop", "length"}
    assert final.choices[0].message.content
    assert not final.choices[0].message.tool_calls


def test_streamed_tool_call_deltas_reassemble(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=DEFAULT_CHAT_MODEL,
        messages=[{"role": "user", "content": "Weather in Rome, in celsius?"}],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=100,
        temperature=0,
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                call["id"] += delta.id or ""
                if delta.function is not None:
                    call["name"] += delta.function.name or ""
                    call["arguments"] += delta.function.arguments or ""
            finish = choice.finish_reason or finish
    assert finish == "tool_calls"
    assert calls
    for call in calls.values():
        assert call["name"] == "get_weather"
        assert json.loads(call["arguments"])["unit"] in {"celsius", "fahrenheit"}


def test_logprobs_are_given_per_token(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=DEFAULT_CHAT_MODEL,
        messages=[{"role": "user", "content": "Say hello."}],
        max_tokens=8,
        temperature=0,
        logprobs=True,
        top_logprobs=3,
    )
    choice = completion.choices[0]
    entries = choice.logprobs.content if choice.logprobs else None
    assert entries
    assert "".join(entry.token for entry in entries) == choice.message.content
    for entry in entries:
        assert entry.logprob <= 0
        assert len(entry.top_logprobs) == 3
        # Greedy decoding picks the most likely token.
        assert entry.logprob == pytest.approx(max(top.logprob for top in entry.top_logprobs))


def test_n_choices_from_one_request(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=DEFAULT_CHAT_MODEL,
        messages=[{"role": "user", "content": "Name a colour."}],
        max_tokens=8,
        temperature=1.0,
        seed=5,
        n=3,
    )
    assert [choice.index for choice in completion.choices] == [0, 1, 2]
    assert all(choice.message.content for choice in completion.choices)


def test_legacy_completions_continue_a_prompt(client: openai.OpenAI) -> None:
    completion = client.completions.create(
        model=DEFAULT_CHAT_MODEL,
        prompt="The capital of France is",
        max_tokens=6,
        temperature=0,
        logprobs=2,
    )
    choice = completion.choices[0]
    assert choice.text
    assert choice.logprobs is not None
    assert "".join(choice.logprobs.tokens or []) == choice.text
    streamed = client.completions.create(
        model=DEFAULT_CHAT_MODEL,
        prompt="The capital of France is",
        max_tokens=6,
        temperature=0,
        stream=True,
    )
    assert "".join(chunk.choices[0].text for chunk in streamed if chunk.choices) == choice.text
