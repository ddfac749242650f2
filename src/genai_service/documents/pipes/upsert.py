"""Upsert: embedded chunks written to the vector store under deterministic point ids."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from genai_service.documents.pipes.chunk import Chunk
from genai_service.retrieval.vector_store import ChunkPoint, VectorStore


async def upsert_chunks(
    store: VectorStore,
    *,
    owner_id: uuid.UUID,
    document_id: uuid.UUID,
    filename: str,
    chunks: Sequence[Chunk],
    vectors: Sequence[Sequence[float]],
) -> None:
    points = [
        ChunkPoint(
            owner_id=owner_id,
            document_id=document_id,
            chunk_index=chunk.index,
            page=chunk.page,
            start=chunk.start,
            end=chunk.end,
            filename=filename,
            text=chunk.text,
            vector=vector,
        )
        for chunk, vector in zip(chunks, vectors, strict=True)
    ]
    await store.upsert(points)
