"""Agent frameworks pointed at `/v1` run unchanged: LangChain's `ChatOpenAI` and LlamaIndex's
`OpenAILike`, against a live server with the real embedded model."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from genai_service.settings import DEFAULT_CHAT_MODEL
from tests.live_server import LiveServer

pytestmark = pytest.mark.integration

LLAMAINDEX_PYTHON = Path(__file__).parents[2] / ".venv-llamaindex" / "bin" / "python"


class Pet(BaseModel):
    """A pet."""

    name: str = Field(max_length=20)
    legs: int


@tool
def get_weather(city: str) -> str:
    """The weather of a city."""
    return f"It is sunny in {city}."


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(Path(tmp_path_factory.mktemp("frameworks")) / "data")
    live.start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def llm(server: LiveServer) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=f"{server.base_url}/v1",
        api_key="anonymous",  # type: ignore[arg-type]
        model=DEFAULT_CHAT_MODEL,
        temperature=0,
        max_tokens=100,  # type: ignore[call-arg]
        max_retries=0,
    )


def test_langchain_chat(llm: ChatOpenAI) -> None:
    reply = llm.invoke("Say hello.")
    assert isinstance(reply, AIMessage)
    assert reply.content


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_langchain_structured_output(llm: ChatOpenAI, method: str) -> None:
    pet = llm.with_structured_output(Pet, method=method).invoke("Invent a pet.")  # type: ignore[arg-type]
    assert isinstance(pet, Pet)
    assert pet.name


def test_langchain_json_mode_gives_an_object(llm: ChatOpenAI) -> None:
    reply = llm.with_structured_output(method="json_mode").invoke(
        'Reply with JSON like {"animal": "cat"}.'
    )
    assert isinstance(reply, dict)


def test_langchain_bind_tools(llm: ChatOpenAI) -> None:
    reply = llm.bind_tools([get_weather], tool_choice="required").invoke("Weather in Paris?")
    assert isinstance(reply, AIMessage)
    assert reply.tool_calls
    call = reply.tool_calls[0]
    assert call["name"] == "get_weather"
    assert isinstance(call["args"]["city"], str)
    assert get_weather.invoke(call["args"]).startswith("It is sunny")


def test_llamaindex_openai_like(server: LiveServer) -> None:
    assert LLAMAINDEX_PYTHON.exists(), (
        "run `make pytest` (or `make test`): it builds .venv-llamaindex"
    )
    script = Path(__file__).with_name("llamaindex_client.py")
    result = subprocess.run(
        [str(LLAMAINDEX_PYTHON), str(script), server.base_url, DEFAULT_CHAT_MODEL],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["chat"]
    assert report["pet"] is not None
    assert report["pet"]["name"]
    assert report["tool_name"] == "get_weather"
    assert report["tool_output"].startswith("It is sunny in")
