"""Hostile documents through the API and the in-process runner, on real databases and a real
(embedded) Qdrant: amplifiers fail fast, cancel and delete stop the work within a second, a
document that kills the model is given up, one user cannot starve the others or fill the queue,
and leftovers of a crash are cleaned up."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import update

from genai_service.app import create_app
from genai_service.documents.worker import ingestion_context
from genai_service.inference.registry import ModelRegistry
from genai_service.models.document import Document, DocumentStatus
from genai_service.retrieval.vector_store import VectorStore
from genai_service.runtime import runtime_of
from genai_service.settings import DocumentSettings, Settings
from tests.conftest import FAKE_CHAT_MODEL, FAKE_EMBEDDING_MODEL, client_for, make_settings
from tests.documents.samples import TEXT, pdf_amplifier, upload, wait_for_final
from tests.fakes import ScriptedChatModel, TokenizingEmbeddingModel
from tests.identity import Account, new_account
from tests.polling import wait_until


@contextlib.asynccontextmanager
async def app_with(
    settings: Settings, embedding: TokenizingEmbeddingModel
) -> AsyncIterator[FastAPI]:
    models = ModelRegistry(
        chat={FAKE_CHAT_MODEL: ScriptedChatModel()},
        embeddings={FAKE_EMBEDDING_MODEL: embedding},
        default_chat=FAKE_CHAT_MODEL,
        default_embedding=FAKE_EMBEDDING_MODEL,
    )
    application = create_app(settings, models=models)
    async with LifespanManager(application, startup_timeout=60):
        await models.start()
        yield application


def documents_settings(tmp_path: Path, database_url: str, **documents: Any) -> Settings:
    values: dict[str, Any] = {"chunk_tokens": 16, "chunk_overlap": 4, "poll_seconds": 0.1}
    values.update(documents)
    return make_settings(tmp_path, database_url, documents=DocumentSettings(**values))


def store_of(app: FastAPI) -> VectorStore:
    store: VectorStore = runtime_of(app).vector_store
    return store


async def test_a_pdf_amplifier_fails_fast_with_a_readable_error(
    tmp_path: Path, database_url: str
) -> None:
    settings = documents_settings(tmp_path, database_url)
    async with (
        app_with(settings, TokenizingEmbeddingModel()) as app,
        client_for(app) as client,
    ):
        alice = await new_account(app, client, "alice")
        response = await upload(client, alice, pdf_amplifier(text_mib=60), "report.pdf")
        assert response.status_code == 202, response.text
        started = time.monotonic()
        failed = await wait_for_final(client, alice, response.json()["id"], within=15)
        assert time.monotonic() - started < 10
    assert failed["status"] == "failed"
    assert failed["error"].startswith("Page 1 of the PDF is too large to read")


@pytest.mark.parametrize("action", ["cancel", "delete"])
async def test_cancel_and_delete_stop_ingestion_mid_tokenizing_within_a_second(
    tmp_path: Path, database_url: str, action: str
) -> None:
    model = TokenizingEmbeddingModel()
    model.hold = asyncio.Event()  # tokenizing takes until the test ends
    settings = documents_settings(tmp_path, database_url)
    async with app_with(settings, model) as app, client_for(app) as client:
        alice = await new_account(app, client, "alice")
        document_id = (await upload(client, alice, (TEXT * 50).encode())).json()["id"]
        await wait_until(model.tokenizing.is_set, within=10)
        if action == "cancel":
            response = await client.post(
                f"/api/documents/{document_id}/cancel", headers=alice.headers
            )
            assert response.status_code == 200
            assert response.json()["status"] == "cancelled"
        else:
            response = await client.delete(f"/api/documents/{document_id}", headers=alice.headers)
            assert response.status_code == 204
        answered = time.monotonic()
        await wait_until(lambda: model.stopped_at is not None, within=1.0)
        assert model.stopped_at is not None
        assert model.stopped_at - answered < 1.0
        await wait_until(lambda: not runtime_of(app).ingestion.running_jobs, within=5)
        assert await store_of(app).count(uuid.UUID(document_id)) == 0
        if action == "delete":
            assert not list(settings.documents_dir.glob(f"{document_id}*"))
        else:
            after = await client.get(f"/api/documents/{document_id}", headers=alice.headers)
            assert after.json()["status"] == "cancelled"


async def test_a_document_that_kills_the_model_is_failed_after_max_attempts(
    tmp_path: Path, database_url: str
) -> None:
    model = TokenizingEmbeddingModel(crash_on="POISON")
    settings = documents_settings(tmp_path, database_url, max_attempts=3)
    async with app_with(settings, model) as app, client_for(app) as client:
        alice = await new_account(app, client, "alice")
        bob = await new_account(app, client, "bob")
        poison = (await upload(client, alice, b"an innocent start, then POISON")).json()["id"]
        fine = (await upload(client, bob, TEXT.encode())).json()["id"]
        failed = await wait_for_final(client, alice, poison)
        indexed = await wait_for_final(client, bob, fine)
    assert failed["status"] == "failed"
    assert failed["attempts"] == 3
    assert "process stopped" in failed["error"]
    assert "each of its 3 attempts" in failed["error"]
    assert sum("POISON" in text for text in model.tokenized) == 3
    assert indexed["status"] == "indexed"


async def test_one_users_large_document_does_not_hold_up_anothers(
    tmp_path: Path, database_url: str
) -> None:
    model = TokenizingEmbeddingModel(embed_delay=0.1)
    settings = documents_settings(tmp_path, database_url, embed_batch_size=2)
    large = " ".join(f"word{n}" for n in range(4000))  # ~330 chunks: ~17 s of embedding
    async with app_with(settings, model) as app, client_for(app) as client:
        alice = await new_account(app, client, "alice")
        bob = await new_account(app, client, "bob")
        large_id = (await upload(client, alice, large.encode(), "large.txt")).json()["id"]
        second_id = (await upload(client, alice, b"alice's second file", "b.txt")).json()["id"]

        async def status(account: Account, document_id: str) -> dict[str, Any]:
            response = await client.get(f"/api/documents/{document_id}", headers=account.headers)
            body: dict[str, Any] = response.json()
            return body

        deadline = time.monotonic() + 10
        while (await status(alice, large_id))["status"] != "embedding":
            assert time.monotonic() < deadline
        one_line = (await upload(client, bob, b"bob's one line", "line.txt")).json()["id"]
        done = await wait_for_final(client, bob, one_line, within=5)
        assert done["status"] == "indexed"
        still = await status(alice, large_id)
        assert still["status"] == "embedding", still
        assert still["progress"] < 0.9
        # A runner takes one document of an owner at a time: her second waits for the first.
        assert (await status(alice, second_id))["status"] == "queued"
        await client.post(f"/api/documents/{large_id}/cancel", headers=alice.headers)
        assert (await wait_for_final(client, alice, second_id))["status"] == "indexed"


async def test_uploads_past_the_users_queued_bytes_get_429(
    tmp_path: Path, database_url: str
) -> None:
    settings = documents_settings(
        tmp_path,
        database_url,
        run_ingestion=False,
        max_upload_bytes=1000,
        max_queued_bytes_per_user=2500,
    )
    async with (
        app_with(settings, TokenizingEmbeddingModel()) as app,
        client_for(app) as client,
    ):
        alice = await new_account(app, client, "alice")
        bob = await new_account(app, client, "bob")
        for n in range(2):
            assert (await upload(client, alice, b"%d" % n * 1000)).status_code == 202
        refused = await upload(client, alice, b"z" * 600)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) > 0
        problem = refused.json()
        assert problem["title"] == "Ingestion queue full"
        assert "take 2,000 of the 2,500 bytes" in problem["detail"]
        assert "this one (600 bytes) does not fit" in problem["detail"]
        listed = await client.get("/api/documents", headers=alice.headers)
        assert listed.json()["total"] == 2
        assert len(list(settings.documents_dir.iterdir())) == 2  # nothing of it was kept

        assert (await upload(client, bob, b"z" * 600)).status_code == 202  # a queue each
        assert (await upload(client, alice, b"y" * 500)).status_code == 202  # up to the limit
        full = await upload(client, alice, b"!")
        assert full.status_code == 429
        assert "take 2,500 of the 2,500 bytes one user may have queued." in full.json()["detail"]

        first, second = (item["id"] for item in listed.json()["items"])
        await client.post(f"/api/documents/{first}/cancel", headers=alice.headers)
        assert (await upload(client, alice, b"!")).status_code == 202

        # A retry queues the document's bytes again: it is held to the same limit.
        async with runtime_of(app).sessionmaker() as session:
            await session.execute(
                update(Document)
                .where(Document.id == uuid.UUID(second))
                .values(status=DocumentStatus.FAILED, error="it failed")
            )
            await session.commit()
        assert (await upload(client, alice, b"w" * 1000)).status_code == 202
        assert (await upload(client, alice, b"v" * 999)).status_code == 202
        retried = await client.post(f"/api/documents/{second}/retry", headers=alice.headers)
        assert retried.status_code == 429
        assert "this one (1,000 bytes) does not fit" in retried.json()["detail"]
        listed = await client.get("/api/documents", headers=alice.headers)
        [queued_kilobyte] = [
            item["id"]
            for item in listed.json()["items"]
            if item["size"] == 1000 and item["status"] == "queued"
        ]
        await client.post(f"/api/documents/{queued_kilobyte}/cancel", headers=alice.headers)
        retried = await client.post(f"/api/documents/{second}/retry", headers=alice.headers)
        assert retried.status_code == 200
        assert retried.json()["status"] == "queued"


@pytest.mark.parametrize("opener", ["server", "worker"])
async def test_upload_files_left_by_a_crash_are_removed_at_start_up(
    tmp_path: Path, database_url: str, opener: str
) -> None:
    settings = documents_settings(tmp_path, database_url)
    folder = settings.documents_dir
    folder.mkdir(parents=True)
    two_hours_ago = time.time() - 2 * 3600
    stale = folder / "incoming-0123456789abcdef"
    stale.write_bytes(b"half an upload")
    os.utime(stale, (two_hours_ago, two_hours_ago))
    receiving = folder / "incoming-fedcba9876543210"
    receiving.write_bytes(b"an upload another process is receiving right now")
    kept = folder / f"{uuid.uuid4()}.upload"
    kept.write_bytes(b"a document's file")
    os.utime(kept, (two_hours_ago, two_hours_ago))
    if opener == "server":
        async with app_with(settings, TokenizingEmbeddingModel()):
            pass
    else:
        models = ModelRegistry(
            chat={},
            embeddings={FAKE_EMBEDDING_MODEL: TokenizingEmbeddingModel()},
            default_embedding=FAKE_EMBEDDING_MODEL,
        )
        async with ingestion_context(settings, models):
            pass
    assert not stale.exists()
    assert receiving.exists()
    assert kept.exists()


async def test_search_results_of_a_line_without_whitespace_are_bounded(
    tmp_path: Path, database_url: str
) -> None:
    settings = documents_settings(
        tmp_path, database_url, chunk_tokens=200, chunk_overlap=40, chunk_chars=2000
    )
    line = b"x" * 100_000 + b" needle " + b"y" * 100_000
    async with (
        app_with(settings, TokenizingEmbeddingModel()) as app,
        client_for(app) as client,
    ):
        alice = await new_account(app, client, "alice")
        document_id = (await upload(client, alice, line, "line.txt")).json()["id"]
        indexed = await wait_for_final(client, alice, document_id)
        assert indexed["status"] == "indexed"
        assert indexed["chunk_count"] >= len(line) // 2000
        response = await client.post(
            "/api/search",
            json={"query": "needle", "k": 20},
            headers=alice.headers,
        )
    assert response.status_code == 200
    hits = response.json()["results"]
    assert hits
    assert all(len(hit["text"]) <= 2000 for hit in hits)
    assert any("needle" in hit["text"] for hit in hits)
