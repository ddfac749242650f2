"""`client.responses` of the official `openai` client against a live genai-service with the real
embedded model."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from pydantic import BaseModel

from genai_service.settings import DEFAULT_CHAT_MODEL
from tests.identity import PASSWORD
from tests.live_server import LiveServer

pytestmark = pytest.mark.integration

GREEDY: dict[str, Any] = {"model": DEFAULT_CHAT_MODEL, "temperature": 0, "max_output_tokens": 24}
WEATHER_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
WEATHER_TOOL: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather in a city.",
    "parameters": WEATHER_PARAMETERS,
    "strict": True,
}


class Place(BaseModel):
    city: str
    country: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(Path(tmp_path_factory.mktemp("live")) / "data")
    live.start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def client(server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="anonymous", max_retries=0)


@pytest.fixture(scope="module")
def other_client(server: LiveServer) -> openai.OpenAI:
    """A registered user's client, signed in with an access token."""
    email = f"other-{uuid.uuid4().hex[:8]}@example.com"
    account = {"email": email, "password": PASSWORD}
    assert httpx.post(f"{server.base_url}/api/auth/register", json=account).status_code == 201
    tokens = httpx.post(
        f"{server.base_url}/api/auth/token", data={"username": email, "password": PASSWORD}
    ).json()
    return openai.OpenAI(
        base_url=f"{server.base_url}/v1", api_key=tokens["access_token"], max_retries=0
    )


def test_create_then_continue_with_previous_response_id(client: openai.OpenAI) -> None:
    first = client.responses.create(input="What is the capital of France?", **GREEDY)
    assert first.id.startswith("resp_")
    assert first.status in {"completed", "incomplete"}
    assert first.output_text
    assert first.usage is not None
    second = client.responses.create(
        input="And the capital of Italy?", previous_response_id=first.id, **GREEDY
    )
    alone = client.responses.create(input="And the capital of Italy?", store=False, **GREEDY)
    assert second.previous_response_id == first.id
    assert second.output_text
    assert second.usage is not None
    assert alone.usage is not None
    # The earlier question and answer are part of the second prompt.
    assert second.usage.input_tokens > alone.usage.input_tokens + first.usage.output_tokens
    assert client.responses.retrieve(second.id).model_dump() == second.model_dump()


def test_streamed_events_are_parsed_by_the_sdk(client: openai.OpenAI) -> None:
    request: Any = {**GREEDY, "input": "Name three fruits."}
    whole = client.responses.create(**request)
    events = list(client.responses.create(**request, stream=True))
    types = [event.type for event in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:-1] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    assert types[-1] in {"response.completed", "response.incomplete"}
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    final = events[-1].response
    assert "".join(deltas) == final.output_text == whole.output_text
    with client.responses.stream(**request) as stream:
        streamed = stream.get_final_response()
    assert streamed.output_text == whole.output_text


def test_json_schema_format_gives_json_that_validates(client: openai.OpenAI) -> None:
    schema = Place.model_json_schema() | {"additionalProperties": False}
    response = client.responses.create(
        input="Name a city and its country.",
        text={"format": {"type": "json_schema", "name": "place", "schema": schema, "strict": True}},
        **{**GREEDY, "max_output_tokens": 64},
    )
    assert response.status == "completed"
    jsonschema.validate(json.loads(response.output_text), schema)
    parsed = client.responses.parse(
        input="Name a city and its country.",
        text_format=Place,
        **{**GREEDY, "max_output_tokens": 64},
    )
    assert isinstance(parsed.output_parsed, Place)


def test_a_schema_the_grammar_cannot_enforce_is_refused_naming_it(client: openai.OpenAI) -> None:
    bounded: dict[str, Any] = {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 1}},
        "required": ["n"],
    }
    with pytest.raises(openai.BadRequestError, match="minimum") as refused:
        client.responses.create(
            input="A number.",
            text={"format": {"type": "json_schema", "name": "n", "schema": bounded}},
            **GREEDY,
        )
    assert refused.value.param == "text.format.schema"
    count: Any = {"type": "function", "name": "count", "parameters": bounded, "strict": False}
    only_count: Any = {
        "type": "allowed_tools",
        "mode": "required",
        "tools": [{"type": "function", "name": "count"}],
    }
    with pytest.raises(openai.BadRequestError, match="minimum") as refused:
        client.responses.create(
            input="Count.", tools=[WEATHER_TOOL, count], tool_choice=only_count, **GREEDY
        )
    assert refused.value.param == "tools[1].parameters"


def test_a_function_call_and_its_output_give_a_final_message(client: openai.OpenAI) -> None:
    asked = client.responses.create(
        input="What is the weather in Paris?",
        tools=[WEATHER_TOOL],
        tool_choice="required",
        **{**GREEDY, "max_output_tokens": 48},
    )
    [call] = asked.output
    assert call.type == "function_call"
    assert call.name == "get_weather"
    jsonschema.validate(json.loads(call.arguments), WEATHER_PARAMETERS)
    assert asked.usage is not None
    answered = client.responses.create(
        previous_response_id=asked.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"}],
        tools=[WEATHER_TOOL],
        # A model this small calls the function again when it may; "none" asks for the answer.
        tool_choice="none",
        **GREEDY,
    )
    assert [item.type for item in answered.output] == ["message"]
    assert answered.output_text
    assert answered.usage is not None
    assert answered.usage.input_tokens > asked.usage.input_tokens


def test_another_users_response_is_not_found(
    client: openai.OpenAI, other_client: openai.OpenAI
) -> None:
    mine = client.responses.create(input="Remember the number 7.", **GREEDY)
    with pytest.raises(openai.NotFoundError):
        other_client.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        other_client.responses.create(input="Which number?", previous_response_id=mine.id, **GREEDY)
    with pytest.raises(openai.NotFoundError):
        other_client.responses.delete(mine.id)
    client.responses.delete(mine.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(mine.id)
