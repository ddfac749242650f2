"""Embed: chunks in batches through the embedding provider of the model registry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from genai_service.documents.pipes.chunk import Chunk


class Embedder(Protocol):
    """What embeds a batch: an embedding model, or the calls under a document's reservation."""

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


async def embed_batch(model: Embedder, chunks: Sequence[Chunk]) -> list[list[float]]:
    """One call for the whole batch: the provider encodes it in a single forward pass
    (or a single remote request)."""
    return await model.embed([chunk.text for chunk in chunks])
