"""The documents API on real databases, a real (embedded) Qdrant and the deterministic fake
embedding model, with the in-process ingestion runner."""

from __future__ import annotations

import json
import tracemalloc
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from genai_service.app import create_app
from genai_service.retrieval.vector_store import VectorStore
from genai_service.runtime import runtime_of
from genai_service.settings import DocumentSettings, Settings
from tests.conftest import client_for, make_fake_models, make_settings
from tests.documents.samples import (
    ELF_EXECUTABLE,
    HTML,
    MARKDOWN,
    TEXT,
    pdf_with_pages,
    upload,
    wait_for_final,
)
from tests.identity import Account, new_account


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    # Small chunks so that tiny documents still make several of them.
    return make_settings(
        tmp_path,
        database_url,
        documents=DocumentSettings(chunk_tokens=16, chunk_overlap=4, embed_batch_size=2),
    )


def store_of(app: FastAPI) -> VectorStore:
    store: VectorStore = runtime_of(app).vector_store
    return store


async def search(
    client: httpx.AsyncClient, account: Account, query: str, **extra: Any
) -> list[dict[str, Any]]:
    response = await client.post(
        "/api/search", json={"query": query, **extra}, headers=account.headers
    )
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


async def test_upload_is_accepted_then_indexed(
    app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    response = await upload(client, alice, TEXT.encode(), "../../etc/lighthouse notes.txt")
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["filename"] == "lighthouse notes.txt"
    assert body["content_type"] == "text/plain"
    assert body["size"] == len(TEXT.encode())
    assert len(body["sha256"]) == 64
    assert body["status"] == "queued"
    assert body["progress"] == 0
    assert {"id", "created_at"} <= set(body)

    done = await wait_for_final(client, alice, body["id"])
    assert done["status"] == "indexed", done
    assert done["progress"] == 1
    assert done["chunk_count"] >= 2
    assert await store_of(app).count(uuid.UUID(body["id"])) == done["chunk_count"]

    # Stored under a generated name: the client's filename never becomes a path.
    stored = sorted(p.name for p in (runtime_of(app).settings.documents_dir).iterdir())
    assert stored == [f"{body['id']}.txt", f"{body['id']}.upload"]

    text = await client.get(f"/api/documents/{body['id']}/text", headers=alice.headers)
    assert text.status_code == 200
    assert text.text == TEXT.replace("\r\n", "\n")
    hits = await search(client, alice, "keeper trims the wick")
    assert hits, "the indexed document is found"
    assert hits[0]["document_id"] == body["id"]
    assert "wick" in hits[0]["text"]
    for hit in hits:
        assert hit["text"] == text.text[hit["start"] : hit["end"]]
        assert hit["page"] is None
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)


async def test_markdown_html_and_a_pdf_named_txt(client: httpx.AsyncClient, alice: Account) -> None:
    pdf = pdf_with_pages(
        [
            "Whales sing long songs in the deep blue ocean, and the songs change every year.",
            "Owls hunt mice at night; their soft feathers make their flight almost silent.",
        ]
    )
    cases = [
        (MARKDOWN.encode(), "bees.md", "text/markdown"),
        (HTML.encode(), "volcano.html", "text/html"),
        (pdf, "renamed.txt", "application/pdf"),
    ]
    ids = []
    for content, name, expected_type in cases:
        response = await upload(client, alice, content, name, "text/plain")
        assert response.status_code == 202, response.text
        assert response.json()["content_type"] == expected_type
        ids.append(response.json()["id"])
    for document_id in ids:
        assert (await wait_for_final(client, alice, document_id))["status"] == "indexed"

    pdf_document = await client.get(f"/api/documents/{ids[2]}", headers=alice.headers)
    assert pdf_document.json()["page_count"] == 2
    hits = await search(client, alice, "flight almost silent", documents=[ids[2]])
    assert hits[0]["page"] == 2
    assert {h["document_id"] for h in hits} == {ids[2]}
    html_text = await client.get(f"/api/documents/{ids[1]}/text", headers=alice.headers)
    assert "var secret" not in html_text.text
    assert "Magma rises" in html_text.text


async def test_an_executable_named_pdf_is_415(
    app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    response = await upload(client, alice, ELF_EXECUTABLE, "report.pdf", "application/pdf")
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"
    assert not any(runtime_of(app).settings.documents_dir.iterdir())


async def test_an_empty_file_is_400(client: httpx.AsyncClient, alice: Account) -> None:
    assert (await upload(client, alice, b"")).status_code == 400


async def test_the_same_content_twice_returns_the_first_document(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    first = await upload(client, alice, TEXT.encode(), "a.txt")
    again = await upload(client, alice, TEXT.encode(), "b.txt")
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    listed = await client.get("/api/documents", headers=alice.headers)
    assert listed.json()["total"] == 1
    # Another owner gets a document of their own.
    theirs = await upload(client, bob, TEXT.encode(), "a.txt")
    assert theirs.status_code == 202
    assert theirs.json()["id"] != first.json()["id"]


async def test_list_is_a_page_of_the_callers_documents(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    for n in range(3):
        assert (await upload(client, alice, f"note {n}".encode())).status_code == 202
    await upload(client, bob, b"bob's note")
    page = await client.get("/api/documents?limit=2", headers=alice.headers)
    assert page.status_code == 200
    body = page.json()
    assert body["total"] == 3
    assert body["limit"] == 2
    assert len(body["items"]) == 2


async def test_another_users_document_is_404_everywhere(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    document_id = (await upload(client, alice, TEXT.encode())).json()["id"]
    await wait_for_final(client, alice, document_id)
    for method, path in [
        ("GET", ""),
        ("GET", "/text"),
        ("GET", "/events"),
        ("POST", "/retry"),
        ("POST", "/cancel"),
        ("DELETE", ""),
    ]:
        response = await client.request(
            method, f"/api/documents/{document_id}{path}", headers=bob.headers
        )
        assert response.status_code == 404, (method, path, response.text)
    assert await search(client, bob, "keeper trims the wick") == []
    assert await search(client, bob, "keeper trims the wick", documents=[document_id]) == []
    assert await search(client, alice, "keeper trims the wick") != []


async def test_events_stream_progress_until_indexed(
    client: httpx.AsyncClient, alice: Account
) -> None:
    document_id = (await upload(client, alice, (TEXT * 5).encode())).json()["id"]
    events: list[tuple[str, str]] = []
    async with client.stream(
        "GET", f"/api/documents/{document_id}/events", headers=alice.headers
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((event, line.removeprefix("data: ")))
    assert events, "at least the final state is sent"
    assert all(name == "progress" for name, _ in events)
    states = [json.loads(data) for _, data in events]
    assert states[-1]["status"] == "indexed"
    assert states[-1]["chunk_count"] >= 2
    progress = [state["progress"] for state in states]
    assert progress == sorted(progress)


async def test_delete_removes_file_text_and_vectors(
    app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    document_id = (await upload(client, alice, TEXT.encode())).json()["id"]
    await wait_for_final(client, alice, document_id)
    assert await store_of(app).count(uuid.UUID(document_id)) > 0
    response = await client.delete(f"/api/documents/{document_id}", headers=alice.headers)
    assert response.status_code == 204
    assert await store_of(app).count(uuid.UUID(document_id)) == 0
    assert not any(runtime_of(app).settings.documents_dir.glob(f"{document_id}*"))
    gone = await client.get(f"/api/documents/{document_id}", headers=alice.headers)
    assert gone.status_code == 404
    assert await search(client, alice, "keeper trims the wick") == []
    # The same content can be uploaded again afterwards.
    assert (await upload(client, alice, TEXT.encode())).status_code == 202


async def test_a_broken_pdf_fails_readably_and_only_failed_documents_retry(
    client: httpx.AsyncClient, alice: Account
) -> None:
    document_id = (await upload(client, alice, b"%PDF-1.7\nnot really a pdf")).json()["id"]
    failed = await wait_for_final(client, alice, document_id)
    assert failed["status"] == "failed"
    assert "PDF" in failed["error"]
    retried = await client.post(f"/api/documents/{document_id}/retry", headers=alice.headers)
    assert retried.status_code == 200
    assert retried.json()["error"] is None
    again = await wait_for_final(client, alice, document_id)
    assert again["status"] == "failed"

    indexed_id = (await upload(client, alice, TEXT.encode())).json()["id"]
    await wait_for_final(client, alice, indexed_id)
    conflict = await client.post(f"/api/documents/{indexed_id}/retry", headers=alice.headers)
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "application/problem+json"
    cancel = await client.post(f"/api/documents/{indexed_id}/cancel", headers=alice.headers)
    assert cancel.status_code == 409


@pytest.fixture
async def app_without_runner(tmp_path: Path, database_url: str) -> AsyncIterator[FastAPI]:
    settings = make_settings(
        tmp_path, database_url, documents=DocumentSettings(run_ingestion=False)
    )
    application = create_app(settings, models=make_fake_models())
    async with LifespanManager(application, startup_timeout=60):
        await runtime_of(application).models.start()
        yield application


async def test_cancel_a_queued_document(app_without_runner: FastAPI) -> None:
    async with client_for(app_without_runner) as client:
        account = await new_account(app_without_runner, client, "carol")
        document_id = (await upload(client, account, TEXT.encode())).json()["id"]
        queued = await client.get(f"/api/documents/{document_id}", headers=account.headers)
        assert queued.json()["status"] == "queued"  # nobody ingests in this app
        cancelled = await client.post(
            f"/api/documents/{document_id}/cancel", headers=account.headers
        )
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
        again = await client.post(f"/api/documents/{document_id}/cancel", headers=account.headers)
        assert again.status_code == 409
        retry = await client.post(f"/api/documents/{document_id}/retry", headers=account.headers)
        assert retry.status_code == 409
        text = await client.get(f"/api/documents/{document_id}/text", headers=account.headers)
        assert text.status_code == 409


async def test_uploads_over_the_limit_are_413(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(
        tmp_path, database_url, documents=DocumentSettings(max_upload_bytes=1000)
    )
    application = create_app(settings, models=make_fake_models())
    async with LifespanManager(application, startup_timeout=60), client_for(application) as client:
        await runtime_of(application).models.start()
        account = await new_account(application, client, "dave")
        # Just over the document limit: refused by the upload itself.
        response = await upload(client, account, b"x" * 1001)
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        # At the limit: fine.
        assert (await upload(client, account, b"y" * 1000)).status_code == 202
        assert sorted(p.suffix for p in settings.documents_dir.iterdir()) == [".upload"]


async def test_a_streamed_upload_over_the_limit_is_refused_before_it_is_all_read(
    tmp_path: Path, database_url: str
) -> None:
    limit = 256 * 1024
    settings = make_settings(
        tmp_path, database_url, documents=DocumentSettings(max_upload_bytes=limit)
    )
    application = create_app(settings, models=make_fake_models())
    block = b"z" * (64 * 1024)
    total_blocks = 1024  # 64 MiB offered
    sent = 0

    async def multipart_body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield (
            b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n'
            b"Content-Type: text/plain\r\n\r\n"
        )
        for _ in range(total_blocks):
            sent += 1
            yield block
        yield b"\r\n--b0undary--\r\n"

    async with LifespanManager(application, startup_timeout=60), client_for(application) as client:
        account = await new_account(application, client, "erin")
        tracemalloc.start()
        try:
            response = await client.post(
                "/api/documents",
                content=multipart_body(),
                headers={
                    **account.headers,
                    "Content-Type": "multipart/form-data; boundary=b0undary",
                },
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert response.status_code == 413
    assert sent < 16, "reading stopped soon after the limit"
    assert peak < 8 * 1024 * 1024, "the body was never held in memory"
    assert not any(settings.documents_dir.glob("*"))
