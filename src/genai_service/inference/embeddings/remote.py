"""Embeddings from a remote OpenAI-compatible `/v1/embeddings`."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Sequence

from loguru import logger
from openai.types import CreateEmbeddingResponse

from genai_service.inference.base import ModelNotReady, ProviderError
from genai_service.inference.openai_compatible.endpoint import OpenAICompatibleEndpoint
from genai_service.inference.openai_compatible.replies import UnreadableReply, read_reply
from genai_service.kit.errors import AppError
from genai_service.settings import ProviderSettings

TEXTS_PER_REQUEST = 256
DIMENSION_PROBE = "dimension probe"
_ESTIMATED_TOKEN = re.compile(r"\w+|[^\w\s]")
"""What the token estimate counts: words and punctuation marks. Remote tokenizers split longer
words further, so the estimate errs low: the remote server has the last word on a long text."""


def _estimated_extent(text: str, limit: int) -> tuple[int, int]:
    """The estimated tokens of `text` up to `limit + 1`, and where its first `limit` end."""
    count, end = 0, len(text)
    for match in itertools.islice(_ESTIMATED_TOKEN.finditer(text), limit + 1):
        count += 1
        if count == limit:
            end = match.end()
    return count, end if count > limit else len(text)


class RemoteEmbeddingModel:
    """Embeddings from a remote OpenAI-compatible server.

    The API does not announce a model's dimension, so `start()` embeds one probe text to learn
    it. When the remote is down then, startup goes on (`ready` is true, as for remote chat
    models) and the dimension is learned from the first successful `embed`; until then
    `dimension` raises `ModelNotReady`. A reply of another dimension later is a `ProviderError`.
    """

    def __init__(self, name: str, provider: ProviderSettings) -> None:
        self._endpoint = OpenAICompatibleEndpoint(name, provider)
        self._dimension: int | None = None
        self._max_input_tokens = provider.context_window

    @property
    def name(self) -> str:
        return self._endpoint.name

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            raise ModelNotReady(f"model {self.name!r}: the dimension is not known yet")
        return self._dimension

    @property
    def max_input_tokens(self) -> int:
        """The provider's `context_window`: the API does not report a model's input limit."""
        return self._max_input_tokens

    @property
    def ready(self) -> bool:
        return self._endpoint.ready

    @property
    def vocabulary_size(self) -> int | None:
        """Unknown here: the remote server checks the ids."""
        return None

    @property
    def special_tokens(self) -> int:
        return 0

    async def start(self) -> None:
        await self._endpoint.start()
        if self._dimension is None:
            try:
                await self.embed([DIMENSION_PROBE])
            except AppError as exc:
                logger.warning("model {!r}: dimension probe failed: {}", self.name, exc.detail)

    async def close(self) -> None:
        await self._endpoint.close()

    async def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """An estimate (words and punctuation marks), counted off the event loop."""
        extents = await asyncio.to_thread(self._extents, texts)
        return [count for count, _ in extents]

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Texts longer than `max_input_tokens` (by the estimate) are cut to it before they are
        sent, as a local model reads only its window."""
        extents = await asyncio.to_thread(self._extents, texts)
        texts = [text[:end] for text, (_, end) in zip(texts, extents, strict=True)]
        vectors: list[list[float]] = []
        for offset in range(0, len(texts), TEXTS_PER_REQUEST):
            vectors.extend(
                await self._embed_request(list(texts[offset : offset + TEXTS_PER_REQUEST]))
            )
        return vectors

    async def embed_token_ids(self, inputs: Sequence[Sequence[int]]) -> list[list[float]]:
        """Token ids go to the remote server as they are (OpenAI's API takes them too)."""
        vectors: list[list[float]] = []
        for offset in range(0, len(inputs), TEXTS_PER_REQUEST):
            batch = [list(ids) for ids in inputs[offset : offset + TEXTS_PER_REQUEST]]
            vectors.extend(await self._embed_request(batch))
        return vectors

    def _extents(self, texts: Sequence[str]) -> list[tuple[int, int]]:
        return [_estimated_extent(text, self._max_input_tokens) for text in texts]

    async def _embed_request(self, texts: list[str] | list[list[int]]) -> list[list[float]]:
        body = {"input": texts, "model": self._endpoint.remote_model, "encoding_format": "float"}
        reply = await self._endpoint.post("/embeddings", body)
        try:
            response = read_reply(CreateEmbeddingResponse, reply)
        except UnreadableReply as exc:
            raise self._endpoint.errors.of_reply(str(exc)) from exc
        data = sorted(response.data, key=lambda item: item.index)
        if len(data) != len(texts):
            raise ProviderError(
                f"model {self.name!r}: {len(data)} embeddings for {len(texts)} texts"
            )
        vectors = [item.embedding for item in data]
        if any(vector and not isinstance(vector[0], int | float) for vector in vectors):
            # What llama.cpp's server answers for a model without pooling.
            raise ProviderError(
                f"model {self.name!r}: the provider answered one vector per token instead of one "
                "per text: its model pools nothing (for llama.cpp, set a pooling type)"
            )
        for vector in vectors:
            self._check_dimension(len(vector))
        return vectors

    def _check_dimension(self, dimension: int) -> None:
        if self._dimension is None:
            self._dimension = dimension
        elif dimension != self._dimension:
            raise ProviderError(
                f"model {self.name!r}: a {dimension}-dimensional embedding from a model of "
                f"dimension {self._dimension}"
            )
