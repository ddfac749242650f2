"""Turns that draw on documents: sources asked of the retriever, put in the prompt, cited."""

from __future__ import annotations

import uuid

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from genai_service.app import create_app
from genai_service.gateway.caller import Caller
from genai_service.inference.registry import ModelRegistry
from genai_service.retrieval.sources import DocumentScope, Source
from genai_service.runtime import runtime_of
from genai_service.settings import Settings
from tests.conftest import FAKE_CHAT_MODEL, client_for
from tests.conversations.support import (
    SMALL_CHAT_MODEL,
    ask,
    messages_of,
    new_conversation,
    parse_sse,
)
from tests.fakes import ScriptedChatModel
from tests.identity import Account, new_account


class ListedSources:
    """A `SourceRetriever` over a fixed list of sources, recording what it was asked."""

    def __init__(self, sources: list[Source]) -> None:
        self.sources = sources
        self.calls: list[tuple[uuid.UUID, str, DocumentScope]] = []

    async def retrieve(self, caller: Caller, query: str, scope: DocumentScope) -> list[Source]:
        self.calls.append((caller.user_id, query, scope))
        return list(self.sources)


def source(text: str, score: float, *, page: int | None = None) -> Source:
    return Source(
        document_id=uuid.uuid4(),
        filename="handbook.pdf",
        chunk_index=3,
        page=page,
        start=100,
        end=100 + len(text),
        score=score,
        text=text,
    )


def citation(item: Source) -> dict[str, object]:
    return {
        "document_id": str(item.document_id),
        "filename": item.filename,
        "chunk_index": item.chunk_index,
        "page": item.page,
        "start": item.start,
        "end": item.end,
        "score": item.score,
        "quote": item.text,
    }


@pytest.fixture
def retriever(app: FastAPI) -> ListedSources:
    sources = [
        source("Holidays are twenty days a year.", 0.71, page=4),
        source("Remote work needs a manager's approval.", 0.83, page=2),
    ]
    listed = ListedSources(sources)
    runtime_of(app).retriever = listed
    return listed


async def test_a_document_turn_cites_its_sources(
    client: httpx.AsyncClient, app: FastAPI, alice: Account, retriever: ListedSources
) -> None:
    conversation = await new_conversation(client, alice, title="HR", documents="all")
    response = await ask(client, alice, conversation["id"], "How many holidays?")
    assert response.status_code == 201, response.text
    assert retriever.calls == [(uuid.UUID(alice.id), "How many holidays?", "all")]
    best_first = sorted(retriever.sources, key=lambda s: s.score, reverse=True)
    assistant = response.json()["assistant_message"]
    assert assistant["citations"] == [citation(item) for item in best_first]
    system = runtime_of(app).models.chat("fake-chat").requests[-1].messages[0]
    assert system.role == "system"
    assert "[1] (handbook.pdf, page 2)\nRemote work needs a manager's approval." in system.content
    assert "[2] (handbook.pdf, page 4)\nHolidays are twenty days a year." in system.content
    stored = await messages_of(client, alice, conversation["id"])
    assert stored[-1]["citations"] == assistant["citations"]
    assert stored[0]["citations"] == []


async def test_the_done_event_carries_the_citations(
    client: httpx.AsyncClient, alice: Account, retriever: ListedSources
) -> None:
    conversation = await new_conversation(client, alice, title="HR")
    document = uuid.uuid4()
    response = await ask(
        client, alice, conversation["id"], "Remote?", stream=True, documents=[str(document)]
    )
    assert retriever.calls == [(uuid.UUID(alice.id), "Remote?", [document])]
    events, _ = parse_sse(response.text)
    done = events[-1]
    assert done.event == "done"
    assert [c["quote"] for c in done.data["message"]["citations"]] == [
        "Remote work needs a manager's approval.",
        "Holidays are twenty days a year.",
    ]


async def test_only_sources_that_fit_are_cited(
    client: httpx.AsyncClient, app: FastAPI, alice: Account, retriever: ListedSources
) -> None:
    retriever.sources = [
        source("one two three four five six seven eight", 0.9),
        source("nine ten eleven twelve thirteen fourteen fifteen sixteen", 0.8),
    ]
    conversation = await new_conversation(
        client, alice, title="Small", model=SMALL_CHAT_MODEL, documents="all"
    )
    response = await ask(client, alice, conversation["id"], "count", max_tokens=8)
    assert response.status_code == 201, response.text
    cited = response.json()["assistant_message"]["citations"]
    assert [c["quote"] for c in cited] == ["one two three four five six seven eight"]
    system = runtime_of(app).models.chat(SMALL_CHAT_MODEL).requests[-1].messages[0].content
    assert "nine ten" not in system


async def test_a_turn_can_opt_out_of_the_conversations_documents(
    client: httpx.AsyncClient, alice: Account, retriever: ListedSources
) -> None:
    conversation = await new_conversation(client, alice, title="HR", documents="all")
    response = await ask(client, alice, conversation["id"], "just chat", documents=None)
    assert response.status_code == 201
    assert retriever.calls == []
    assert response.json()["assistant_message"]["citations"] == []


async def test_without_an_embedding_model_documents_are_a_clear_error(settings: Settings) -> None:
    models = ModelRegistry(chat={FAKE_CHAT_MODEL: ScriptedChatModel()})
    application = create_app(settings, models=models)
    async with LifespanManager(application), client_for(application) as client:
        await models.start()
        alice = await new_account(application, client, "alice")
        conversation = await new_conversation(client, alice, title="HR", documents="all")
        response = await ask(client, alice, conversation["id"], "How many holidays?")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("documents-unavailable")
        assert "documents" in response.json()["detail"]
        assert await messages_of(client, alice, conversation["id"]) == []
        search = await client.post("/api/search", json={"query": "x"}, headers=alice.headers)
        assert search.status_code == 503
        assert search.json()["type"].endswith("documents-unavailable")
        plain = await new_conversation(client, alice, title="Plain")
        assert (await ask(client, alice, plain["id"], "hello")).status_code == 201
