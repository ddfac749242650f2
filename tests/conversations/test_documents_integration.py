"""Answers from documents, end to end: upload, real ingestion (MiniLM, embedded Qdrant), a turn on
the real SmolLM2 that draws on the document, and citations that point into its text."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from genai_service.app import create_app
from genai_service.runtime import runtime_of
from genai_service.settings import (
    DocumentSettings,
    InferenceSettings,
    LocalChatSettings,
    ProviderSettings,
)
from tests.conftest import make_settings
from tests.conversations.support import ask, messages_of, new_conversation, parse_sse
from tests.documents.samples import upload, wait_for_final
from tests.identity import Account

pytestmark = pytest.mark.integration

CHAT_MODEL = "smollm2"
EMBEDDING_MODEL = "minilm"
HANDBOOK = (
    "Harbour Lighthouse Handbook\n\n"
    "The keeper climbs the tower every evening at dusk and lights the lamp. "
    "The lamp flashes twice every ten seconds so that ships can tell this lighthouse apart. "
    "In fog the keeper also sounds the horn once a minute.\n\n"
    "Supplies arrive by boat on the first Monday of each month. "
    "The boat brings oil for the lamp, fresh water and letters from the mainland.\n\n"
    "Visitors may climb the tower on Saturdays between ten and noon, "
    "accompanied by the keeper, and never in a storm."
)
QUESTION = "When do supplies arrive by boat at the lighthouse?"


@pytest.fixture
async def app(tmp_path: Path, database_url: str) -> AsyncIterator[FastAPI]:
    inference = InferenceSettings(
        chat_models={CHAT_MODEL: [ProviderSettings(kind="local")]},
        embedding_models={EMBEDDING_MODEL: [ProviderSettings(kind="local")]},
        default_chat_model=CHAT_MODEL,
        default_embedding_model=EMBEDDING_MODEL,
        local_chat=LocalChatSettings(n_ctx=1024, n_seq_max=1, n_threads=1, max_queue=4),
    )
    settings = make_settings(
        tmp_path,
        database_url,
        inference=inference,
        documents=DocumentSettings(chunk_tokens=40, chunk_overlap=8),
    )
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=180, shutdown_timeout=60):
        await runtime_of(application).models.start()
        yield application


async def indexed_handbook(client: httpx.AsyncClient, account: Account) -> tuple[str, str]:
    """Upload the handbook as `account`, wait until it is indexed; its id and extracted text."""
    response = await upload(client, account, HANDBOOK.encode(), "handbook.md")
    assert response.status_code == 202, response.text
    document_id: str = response.json()["id"]
    final = await wait_for_final(client, account, document_id, within=120)
    assert final["status"] == "indexed", final
    text = await client.get(f"/api/documents/{document_id}/text", headers=account.headers)
    assert text.status_code == 200
    return document_id, text.text


def assert_cites_handbook(citations: list[dict[str, Any]], document_id: str, text: str) -> None:
    assert citations, "a turn over an indexed document cites it"
    for citation in citations:
        assert citation["document_id"] == document_id
        assert citation["filename"] == "handbook.md"
        assert citation["quote"] == text[citation["start"] : citation["end"]]
        assert citation["quote"] in HANDBOOK
        assert citation["score"] >= 0.2  # the default score threshold
    scores = [citation["score"] for citation in citations]
    assert scores == sorted(scores, reverse=True)
    assert "first Monday of each month" in citations[0]["quote"]


async def test_an_answer_cites_the_uploaded_document(
    client: httpx.AsyncClient, alice: Account
) -> None:
    document_id, text = await indexed_handbook(client, alice)
    conversation = await new_conversation(client, alice, title="Lighthouse", documents="all")

    response = await ask(
        client, alice, conversation["id"], QUESTION, max_tokens=48, temperature=0, seed=7
    )

    assert response.status_code == 201, response.text
    reply = response.json()["assistant_message"]
    assert reply["status"] == "completed"
    assert reply["content"].strip()
    assert_cites_handbook(reply["citations"], document_id, text)
    stored = await messages_of(client, alice, conversation["id"])
    assert stored[-1]["id"] == reply["id"]
    assert stored[-1]["citations"] == reply["citations"]


async def test_a_streamed_answer_carries_citations_in_its_done_event(
    client: httpx.AsyncClient, alice: Account
) -> None:
    document_id, text = await indexed_handbook(client, alice)
    conversation = await new_conversation(client, alice, title="Lighthouse")

    response = await ask(
        client,
        alice,
        conversation["id"],
        QUESTION,
        stream=True,
        max_tokens=32,
        temperature=0,
        documents=[document_id],
    )

    assert response.status_code == 200, response.text
    events, _ = parse_sse(response.text)
    done = [event for event in events if event.event == "done"]
    assert len(done) == 1, [event.event for event in events]
    message = done[0].data["message"]
    assert_cites_handbook(message["citations"], document_id, text)


async def test_another_users_documents_are_never_cited(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    await indexed_handbook(client, alice)
    conversation = await new_conversation(client, bob, title="Mine", documents="all")

    response = await ask(client, bob, conversation["id"], QUESTION, max_tokens=16, temperature=0)

    assert response.status_code == 201, response.text
    assert response.json()["assistant_message"]["citations"] == []
