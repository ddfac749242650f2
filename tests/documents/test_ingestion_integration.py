"""The real pipeline: all-MiniLM-L6-v2 and an embedded Qdrant, in the server and in workers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from genai_service.app import create_app
from genai_service.documents.repository import DocumentRepository
from genai_service.inference.embeddings import LocalEmbeddingModel
from genai_service.inference.registry import ModelRegistry
from genai_service.kit.db import create_engine, create_sessionmaker
from genai_service.models.document import Document, DocumentStatus
from genai_service.retrieval.vector_store import QdrantVectorStore
from genai_service.runtime import runtime_of
from genai_service.settings import DocumentSettings, LocalEmbeddingSettings, Settings
from tests.conftest import client_for, make_settings
from tests.documents.samples import HTML, MARKDOWN, TEXT, pdf_with_pages, upload, wait_for_final
from tests.fakes import ScriptedChatModel
from tests.polling import wait_until

pytestmark = pytest.mark.integration


def real_embedding_models() -> ModelRegistry:
    return ModelRegistry(
        chat={"fake-chat": ScriptedChatModel()},
        embeddings={"all-minilm-l6-v2": LocalEmbeddingModel(LocalEmbeddingSettings())},
    )


@pytest.fixture
async def minilm_app(tmp_path: Path, database_url: str) -> AsyncIterator[FastAPI]:
    settings = make_settings(
        tmp_path, database_url, documents=DocumentSettings(chunk_tokens=48, chunk_overlap=8)
    )
    application = create_app(settings, models=real_embedding_models())
    async with LifespanManager(application, startup_timeout=120, shutdown_timeout=60):
        await runtime_of(application).models.start()
        yield application


async def test_every_format_is_indexed_and_found_by_meaning(minilm_app: FastAPI) -> None:
    pdf = pdf_with_pages(
        [
            "The treasury report covers the budget, taxes and public spending for the year. "
            "Revenue grew while interest payments on the national debt rose again. "
            "Auditors reviewed every ministry and found the accounts in order.",
            "Penguins live in Antarctica, where they huddle together to survive the cold winter. "
            "Emperor penguins keep their eggs warm on their feet for two months. "
            "They dive deep into icy water to catch fish and krill.",
        ]
    )
    uploads = {
        "lighthouse.txt": TEXT.encode(),
        "bees.md": MARKDOWN.encode(),
        "volcano.html": HTML.encode(),
        "report.pdf": pdf,
    }
    async with client_for(minilm_app) as client:
        ids = {}
        for name, content in uploads.items():
            response = await upload(client, None, content, name)
            assert response.status_code == 202, response.text
            ids[name] = response.json()["id"]
        for name, document_id in ids.items():
            done = await wait_for_final(client, None, document_id, within=120)
            assert done["status"] == "indexed", (name, done)

        questions = {
            "How do bees tell each other where the flowers are?": "bees.md",
            "What happens when molten rock erupts?": "volcano.html",
            "Who takes care of the lamp that warns ships?": "lighthouse.txt",
            "Which birds live in the coldest place on Earth?": "report.pdf",
        }
        for question, expected in questions.items():
            response = await client.post("/api/search", json={"query": question, "k": 3})
            assert response.status_code == 200
            hits = response.json()["results"]
            assert hits, question
            assert hits[0]["filename"] == expected, (question, hits[0])
            text = await client.get(f"/api/documents/{hits[0]['document_id']}/text")
            for hit in hits:
                if hit["document_id"] == hits[0]["document_id"]:
                    assert hit["text"] == text.text[hit["start"] : hit["end"]]
        penguins = await client.post(
            "/api/search",
            json={"query": "penguins huddle in the cold", "documents": [ids["report.pdf"]]},
        )
        best = penguins.json()["results"][0]
        assert best["page"] == 2, best


def worker_environment(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "GENAI_DATA_DIR": str(settings.data_dir),
        "GENAI_DATABASE_URL": settings.sqlalchemy_url,
        "GENAI_DOCUMENTS__LEASE_SECONDS": "1",
        "GENAI_DOCUMENTS__EMBED_BATCH_SIZE": "1",
        "GENAI_DOCUMENTS__CHUNK_TOKENS": "24",
        "GENAI_DOCUMENTS__CHUNK_OVERLAP": "4",
        "GENAI_INFERENCE__CHAT_MODELS": "{}",
    }


async def read_document(settings: Settings, document_id: uuid.UUID) -> Document:
    engine = create_engine(settings.sqlalchemy_url)
    try:
        async with create_sessionmaker(engine)() as session:
            document = await DocumentRepository(session).get(document_id)
    finally:
        await engine.dispose()
    assert document is not None
    return document


def children_of(pid: int) -> set[int]:
    """The processes whose parent is `pid` (Linux `/proc`)."""
    children = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # ended meanwhile
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.add(int(entry.name))
    return children


def alive(pids: set[int]) -> bool:
    """Whether any of `pids` still runs (a zombie waiting for its reaper does not)."""
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            return True
    return False


async def test_a_killed_worker_is_replaced_and_the_document_is_indexed_once(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(
        tmp_path, database_url, documents=DocumentSettings(run_ingestion=False)
    )
    # A server that only accepts uploads (workers ingest), closed before the workers start:
    # an embedded Qdrant folder belongs to one process at a time.
    server = create_app(settings, models=real_embedding_models())
    long_text = "\n\n".join(
        f"Paragraph {n}: the river carries silt from the mountains to the delta, year after year."
        for n in range(90)
    )
    # The embedding model may still be loading when the upload is done: give shutdown time.
    lifespan = LifespanManager(server, startup_timeout=120, shutdown_timeout=120)
    async with lifespan, client_for(server) as client:
        response = await upload(client, None, long_text.encode(), "river.txt")
        assert response.status_code == 202
    document_id = uuid.UUID(response.json()["id"])

    env = worker_environment(settings)
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "genai_service",
        "worker",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            document = await read_document(settings, document_id)
            if document.status is DocumentStatus.EMBEDDING and document.progress >= 0.3:
                break
            assert document.status is not DocumentStatus.INDEXED, "finished before the kill"
            assert worker.returncode is None, "the worker died on its own"
            assert time.monotonic() < deadline, f"no progress: {document.status}"
            await asyncio.sleep(0.05)
        encoder = children_of(worker.pid)
        assert encoder, "the worker runs its embedding model in a child process"
        worker.send_signal(signal.SIGKILL)
        await asyncio.wait_for(worker.wait(), 30)
        # The encoder process goes with its worker instead of holding the model forever.
        await wait_until(lambda: not alive(encoder), within=30)
    finally:
        if worker.returncode is None:
            worker.kill()
            await asyncio.wait_for(worker.wait(), 30)

    interrupted = await read_document(settings, document_id)
    assert interrupted.status is DocumentStatus.EMBEDDING
    assert interrupted.progress < 1
    await asyncio.sleep(1.5)  # the dead worker's lease runs out

    drained = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "genai_service", "worker", "--drain"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert drained.returncode == 0, drained.stderr[-2000:]
    assert "1 document(s) ingested" in drained.stdout

    indexed = await read_document(settings, document_id)
    assert indexed.status is DocumentStatus.INDEXED
    assert indexed.attempts == 2
    assert indexed.chunk_count is not None
    assert indexed.chunk_count > 20
    store = QdrantVectorStore.from_settings(settings)
    try:
        assert await store.count(document_id) == indexed.chunk_count
        assert await store.count() == indexed.chunk_count  # no duplicates, nothing stray
    finally:
        await store.close()


def test_cli_ingest_a_folder_with_a_progress_bar(tmp_path: Path) -> None:
    folder = tmp_path / "inbox"
    (folder / "nested").mkdir(parents=True)
    (folder / "lighthouse.txt").write_text(TEXT)
    (folder / "nested" / "bees.md").write_text(MARKDOWN)
    (folder / ".hidden").write_text("skipped")
    (folder / "program.pdf").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(64))
    env = {
        **os.environ,
        "GENAI_DATA_DIR": str(tmp_path / "data"),
        "GENAI_INFERENCE__CHAT_MODELS": "{}",
    }
    result = subprocess.run(
        [sys.executable, "-m", "genai_service", "ingest", str(folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = result.stdout + result.stderr
    assert "2 of 3 file(s) indexed" in output, output[-2000:]
    assert "program.pdf" in output  # reported as skipped
    assert result.returncode == 1  # not everything could be ingested

    again = subprocess.run(
        [sys.executable, "-m", "genai_service", "ingest", str(folder / "lighthouse.txt")],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert "1 of 1 file(s) indexed" in again.stdout
