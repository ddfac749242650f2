"""Retrieval: a query embedded with the default embedding model, searched in the owner's chunks."""

from __future__ import annotations

import uuid

from genai_service.inference.registry import ModelRegistry
from genai_service.retrieval.sources import DocumentScope, Source
from genai_service.retrieval.vector_store import VectorStore
from genai_service.settings import RetrievalSettings


class RetrievalService:
    """Implements `SourceRetriever` for chat turns, and the search of `POST /api/search`."""

    def __init__(
        self, models: ModelRegistry, store: VectorStore, settings: RetrievalSettings
    ) -> None:
        self._models = models
        self._store = store
        self._settings = settings

    async def retrieve(self, owner_id: uuid.UUID, query: str, scope: DocumentScope) -> list[Source]:
        return await self.search(owner_id, query, scope=scope)

    async def search(
        self,
        owner_id: uuid.UUID,
        query: str,
        *,
        scope: DocumentScope = "all",
        k: int | None = None,
        score_threshold: float | None = None,
    ) -> list[Source]:
        """The owner's indexed chunks in `scope` most similar to `query`, best first."""
        document_ids = None if isinstance(scope, str) else list(scope)
        if document_ids is not None and not document_ids:
            return []
        model = self._models.embedding(self._models.default_embedding_name)
        [vector] = await model.embed([query])
        return await self._store.search(
            owner_id,
            vector,
            limit=k or self._settings.k,
            score_threshold=(
                self._settings.score_threshold if score_threshold is None else score_threshold
            ),
            document_ids=document_ids,
        )
