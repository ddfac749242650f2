"""Embed: chunks in batches through the embedding provider of the model registry."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

import anyio.to_thread

from genai_service.documents.pipes.chunk import Chunk, approximate_token_spans
from genai_service.inference.base import EmbeddingModel, TokenSpanner

T = TypeVar("T")


def batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for offset in range(0, len(items), size):
        yield items[offset : offset + size]


async def token_spans(model: EmbeddingModel, text: str) -> list[tuple[int, int]]:
    """The model's own tokens when it exposes its tokenizer; words and marks otherwise."""
    if isinstance(model, TokenSpanner):
        return await model.token_spans(text)
    return await anyio.to_thread.run_sync(approximate_token_spans, text)


async def embed_batch(model: EmbeddingModel, chunks: Sequence[Chunk]) -> list[list[float]]:
    """One call for the whole batch: the provider encodes it in a single forward pass
    (or a single remote request)."""
    return await model.embed([chunk.text for chunk in chunks])
