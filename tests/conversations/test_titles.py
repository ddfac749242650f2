"""Titles of untitled conversations: cleaned model output, a fallback when the model fails."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI

from genai_service.conversations.titles import TitleWriter, clean_title, fallback_title
from genai_service.inference.base import ProviderError
from genai_service.runtime import runtime_of
from tests.conversations.support import new_conversation
from tests.fakes import FailingChatModel, ScriptedChatModel
from tests.identity import Account


def test_clean_title() -> None:
    assert clean_title('Title: "Trip to Rome."\nMore text') == "Trip to Rome"
    assert clean_title("\n\n  **Baking bread**  ") == "Baking bread"
    assert clean_title("one two three four five six seven eight nine ten") == (
        "one two three four five six seven eight"
    )
    assert len(clean_title("x" * 500)) == 80
    assert clean_title("   ") == ""
    assert fallback_title("   ") == "New conversation"
    assert fallback_title("how do I bake bread at home quickly") == "how do I bake bread at"


async def test_a_failing_model_still_leaves_a_title(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    conversation = await new_conversation(client, alice)
    writer = TitleWriter(runtime_of(app).sessionmaker, max_tokens=16)
    failing = FailingChatModel(ProviderError("down"))
    await failing.start()
    conversation_id = uuid.UUID(conversation["id"])
    await writer.write(failing, conversation_id, "plan a trip to Rome", "Sure.")
    url = f"/api/conversations/{conversation['id']}"
    assert (await client.get(url, headers=alice.headers)).json()["title"] == "plan a trip to Rome"
    # A title is written once: a later writer leaves it alone.
    model = ScriptedChatModel(reply="Something else")
    await model.start()
    await writer.write(model, conversation_id, "other", "other")
    assert (await client.get(url, headers=alice.headers)).json()["title"] == "plan a trip to Rome"
