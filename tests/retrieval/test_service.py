"""`RetrievalService` meets the `SourceRetriever` contract chat turns depend on."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from genai_service.gateway.caller import Caller
from genai_service.gateway.gateway import ModelGateway
from genai_service.inference.registry import ModelRegistry
from genai_service.retrieval.service import RetrievalService
from genai_service.retrieval.sources import Source, SourceRetriever
from genai_service.retrieval.vector_store import QdrantVectorStore
from genai_service.settings import RetrievalSettings
from tests.conftest import make_fake_models
from tests.retrieval.test_vector_store import points


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[tuple[ModelRegistry, QdrantVectorStore]]:
    models = make_fake_models()
    await models.start()
    store = QdrantVectorStore(QdrantClient(path=str(tmp_path / "q")), "chunks", threads=1)
    try:
        yield models, store
    finally:
        await store.close()
        await models.close()


async def test_retrieve_returns_the_owners_best_sources(
    parts: tuple[ModelRegistry, QdrantVectorStore],
) -> None:
    models, store = parts
    embedder = models.embedding()
    owner, other = uuid.uuid4(), uuid.uuid4()
    document, others_document = uuid.uuid4(), uuid.uuid4()
    texts = ["tides follow the moon", "bread needs yeast", "the moon has phases", "tides"]
    for who, which in [(owner, document), (other, others_document)]:
        batch = points(who, which, texts, filename="notes.md")
        vectors = await embedder.embed([p.text for p in batch])
        await store.upsert([replace(p, vector=v) for p, v in zip(batch, vectors, strict=True)])
        await store.mark_searchable(who, which)

    retriever: SourceRetriever = RetrievalService(
        ModelGateway(models), store, RetrievalSettings(k=2, score_threshold=0.3)
    )
    caller = Caller(owner)
    sources = await retriever.retrieve(caller, "the moon and tides", "all")
    assert 1 <= len(sources) <= 2
    assert all(isinstance(s, Source) for s in sources)
    assert all(s.document_id == document and s.filename == "notes.md" for s in sources)
    assert all(s.score >= 0.3 for s in sources)
    assert [s.score for s in sources] == sorted((s.score for s in sources), reverse=True)
    assert "bread needs yeast" not in {s.text for s in sources}
    assert await retriever.retrieve(caller, "the moon and tides", [others_document]) == []
    assert await retriever.retrieve(caller, "the moon and tides", []) == []
    scoped = await retriever.retrieve(caller, "the moon and tides", [document])
    assert [s.chunk_index for s in scoped] == [s.chunk_index for s in sources]
