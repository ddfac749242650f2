"""The Qdrant store in local mode (a real embedded Qdrant in a temporary folder)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from genai_service.retrieval.vector_store import (
    ChunkPoint,
    QdrantVectorStore,
    VectorStoreError,
    point_id,
)
from tests.fakes import FakeEmbeddingModel

EMBEDDER = FakeEmbeddingModel(dimension=32)


def points(
    owner: uuid.UUID, document: uuid.UUID, texts: list[str], filename: str = "f.txt"
) -> list[ChunkPoint]:
    result, offset = [], 0
    for index, text in enumerate(texts):
        result.append(
            ChunkPoint(
                owner_id=owner,
                document_id=document,
                chunk_index=index,
                page=None,
                start=offset,
                end=offset + len(text),
                filename=filename,
                text=text,
                vector=EMBEDDER.vector(text),
            )
        )
        offset += len(text) + 1
    return result


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[QdrantVectorStore]:
    vectors = QdrantVectorStore(QdrantClient(path=str(tmp_path / "q")), "chunks", threads=1)
    try:
        yield vectors
    finally:
        await vectors.close()


async def test_points_are_searchable_only_once_marked(store: QdrantVectorStore) -> None:
    owner, document = uuid.uuid4(), uuid.uuid4()
    await store.upsert(points(owner, document, ["red apples", "green pears"]))
    query = EMBEDDER.vector("red apples")
    assert await store.search(owner, query, limit=5, score_threshold=0.0) == []
    await store.mark_searchable(owner, document)
    hits = await store.search(owner, query, limit=5, score_threshold=0.0)
    assert hits[0].text == "red apples"
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert hits[0].document_id == document
    assert (hits[0].start, hits[0].end, hits[0].chunk_index) == (0, 10, 0)


async def test_writing_a_chunk_again_replaces_it(store: QdrantVectorStore) -> None:
    owner, document = uuid.uuid4(), uuid.uuid4()
    await store.upsert(points(owner, document, ["one", "two", "three"]))
    await store.upsert(points(owner, document, ["one", "two", "three"]))
    assert await store.count(document) == 3
    assert point_id(document, 2) == point_id(document, 2)
    assert point_id(document, 2) != point_id(document, 3)


async def test_search_is_filtered_by_owner_and_documents(store: QdrantVectorStore) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    alices, bobs, alices_other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for owner, document in [(alice, alices), (bob, bobs), (alice, alices_other)]:
        await store.upsert(points(owner, document, ["shared words here"]))
        await store.mark_searchable(owner, document)
    query = EMBEDDER.vector("shared words here")
    assert {
        h.document_id for h in await store.search(alice, query, limit=10, score_threshold=0)
    } == {
        alices,
        alices_other,
    }
    only = await store.search(
        alice, query, limit=10, score_threshold=0, document_ids=[bobs, alices]
    )
    assert {h.document_id for h in only} == {alices}
    assert await store.search(alice, query, limit=10, score_threshold=0, document_ids=[]) == []


async def test_score_threshold_and_limit(store: QdrantVectorStore) -> None:
    owner, document = uuid.uuid4(), uuid.uuid4()
    texts = ["cats purr", "cats purr loudly", "cats", "ships sail"]
    await store.upsert(points(owner, document, texts))
    await store.mark_searchable(owner, document)
    query = EMBEDDER.vector("cats purr")
    hits = await store.search(owner, query, limit=2, score_threshold=0.0)
    assert len(hits) == 2
    strict = await store.search(owner, query, limit=10, score_threshold=0.5)
    assert "ships sail" not in {h.text for h in strict}
    assert all(h.score >= 0.5 for h in strict)


async def test_delete_document_removes_only_its_points(store: QdrantVectorStore) -> None:
    owner, kept, removed = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await store.upsert(points(owner, kept, ["a b"]))
    await store.upsert(points(owner, removed, ["c d", "e f"]))
    await store.delete_document(owner, removed)
    assert await store.count(removed) == 0
    assert await store.count(kept) == 1
    # Another owner's delete of the same id does nothing.
    await store.delete_document(uuid.uuid4(), kept)
    assert await store.count(kept) == 1


async def test_an_existing_collection_is_kept_and_never_recreated(tmp_path: Path) -> None:
    path = str(tmp_path / "q")
    owner, document = uuid.uuid4(), uuid.uuid4()
    first = QdrantVectorStore(QdrantClient(path=path), "chunks", threads=1)
    await first.upsert(points(owner, document, ["kept across restarts"]))
    await first.close()
    second = QdrantVectorStore(QdrantClient(path=path), "chunks", threads=1)
    try:
        await second.upsert(points(owner, uuid.uuid4(), ["another"]))
        assert await second.count() == 2
        wrong = ChunkPoint(owner, uuid.uuid4(), 0, None, 0, 1, "f", "x", vector=[1.0, 0.0])
        with pytest.raises(VectorStoreError, match="32-dimensional"):
            await second.upsert([wrong])
        assert await second.count() == 2
    finally:
        await second.close()


async def test_an_empty_store_answers_and_is_ready(store: QdrantVectorStore) -> None:
    owner = uuid.uuid4()
    assert await store.ready()
    assert await store.search(owner, [0.1] * 32, limit=3, score_threshold=0) == []
    assert await store.count() == 0
    await store.delete_document(owner, uuid.uuid4())


async def test_the_owners_chunks_are_found_behind_many_better_ones_of_others(
    store: QdrantVectorStore,
) -> None:
    """More than a probe's worth of other owners' chunks outrank the owner's: the owner still
    gets their own best chunks (the filtered search takes over)."""
    owner, other = uuid.uuid4(), uuid.uuid4()
    crowd = uuid.uuid4()
    await store.upsert(points(other, crowd, [f"apples pears plums {n}" for n in range(100)]))
    await store.mark_searchable(other, crowd)
    mine = uuid.uuid4()
    await store.upsert(points(owner, mine, ["apples and nothing else", "unrelated words"]))
    await store.mark_searchable(owner, mine)
    query = EMBEDDER.vector("apples pears plums")
    hits = await store.search(owner, query, limit=1, score_threshold=0.0)
    assert [h.text for h in hits] == ["apples and nothing else"]
    everything = await store.search(owner, query, limit=5, score_threshold=-1.0)
    assert {h.text for h in everything} == {"apples and nothing else", "unrelated words"}
    theirs = await store.search(other, query, limit=3, score_threshold=0.0)
    assert len(theirs) == 3
    assert all(h.document_id == crowd for h in theirs)
