"""Embed: chunks in batches through the embedding provider of the model registry."""

from __future__ import annotations

from collections.abc import Sequence

from genai_service.documents.pipes.chunk import Chunk
from genai_service.inference.base import EmbeddingModel


async def embed_batch(model: EmbeddingModel, chunks: Sequence[Chunk]) -> list[list[float]]:
    """One call for the whole batch: the provider encodes it in a single forward pass
    (or a single remote request)."""
    return await model.embed([chunk.text for chunk in chunks])
