"""`/v1/embeddings` and `/v1/models`: OpenAI-shaped requests to our protocols and back."""

from __future__ import annotations

import base64
import struct
import time
from collections.abc import Sequence

from genai_service.inference.base import ModelNotFound
from genai_service.inference.registry import ModelRegistry
from genai_service.openai_api.schemas import (
    Embedding,
    EmbeddingCreate,
    EmbeddingList,
    EmbeddingUsage,
    ModelCard,
    ModelList,
)


def _encode_base64(vector: Sequence[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


class OpenAIService:
    def __init__(self, models: ModelRegistry) -> None:
        self.models = models

    def _model_name(self, requested: str | None, *, chat: bool) -> str:
        if requested:
            return requested
        return self.models.default_chat_name if chat else self.models.default_embedding_name

    async def embed(self, body: EmbeddingCreate) -> EmbeddingList:
        name = self._model_name(body.model, chat=False)
        vectors = await self.models.embedding(name).embed(body.texts)
        encode = _encode_base64 if body.encoding_format == "base64" else list
        # Embedding models have no tokenizer in the protocol: usage counts whitespace words.
        tokens = sum(len(text.split()) for text in body.texts)
        return EmbeddingList(
            data=[Embedding(index=i, embedding=encode(v)) for i, v in enumerate(vectors)],
            model=name,
            usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens),
        )

    def list_models(self) -> ModelList:
        created = int(time.time())
        names = [*self.models.chat_names(), *self.models.embedding_names()]
        return ModelList(data=[ModelCard(id=name, created=created) for name in names])

    def get_model(self, name: str) -> ModelCard:
        if name not in (*self.models.chat_names(), *self.models.embedding_names()):
            raise ModelNotFound(f"model {name!r} does not exist")
        return ModelCard(id=name, created=int(time.time()))
