"""LlamaIndex's `OpenAILike` against a live genai-service: run by its own interpreter.

LlamaIndex pins `openai<3`, which the service itself does not, so it lives in a virtualenv of
its own (`make pytest` builds `.venv-llamaindex`) and reports back as one JSON line:
`python llamaindex_client.py BASE_URL MODEL`.
"""

from __future__ import annotations

import json
import sys

from llama_index.core.llms import ChatMessage
from llama_index.core.tools import FunctionTool
from llama_index.llms.openai_like import OpenAILike
from pydantic import BaseModel, Field


class Pet(BaseModel):
    """A pet."""

    name: str = Field(max_length=20)
    legs: int


def get_weather(city: str) -> str:
    """The weather of a city."""
    return f"It is sunny in {city}."


def main(base_url: str, model: str) -> None:
    llm = OpenAILike(
        model=model,
        api_base=f"{base_url}/v1",
        api_key="anonymous",
        is_chat_model=True,
        is_function_calling_model=True,
        context_window=2048,
        max_tokens=80,
        temperature=0,
        max_retries=0,
    )
    chat = llm.chat([ChatMessage(role="user", content="Say hello.")])
    pet = llm.as_structured_llm(Pet).complete("Invent a pet.").raw
    tool = FunctionTool.from_defaults(fn=get_weather)
    called = llm.predict_and_call([tool], "What is the weather in Paris?")
    report = {
        "chat": chat.message.content,
        "pet": pet.model_dump() if isinstance(pet, Pet) else None,
        "tool_output": str(called),
        "tool_name": called.sources[0].tool_name if called.sources else None,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
