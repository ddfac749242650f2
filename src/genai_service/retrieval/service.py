"""Retrieval: a query embedded with the default embedding model, searched in the caller's chunks."""

from __future__ import annotations

from genai_service.gateway.caller import Caller
from genai_service.gateway.gateway import ModelGateway
from genai_service.retrieval.sources import DocumentScope, Source
from genai_service.retrieval.vector_store import VectorStore
from genai_service.settings import RetrievalSettings


class RetrievalService:
    """Implements `SourceRetriever` for chat turns, and the search of `POST /api/search`."""

    def __init__(
        self, gateway: ModelGateway, store: VectorStore, settings: RetrievalSettings
    ) -> None:
        self._gateway = gateway
        self._store = store
        self._settings = settings

    async def retrieve(self, caller: Caller, query: str, scope: DocumentScope) -> list[Source]:
        return await self.search(caller, query, scope=scope)

    async def search(
        self,
        caller: Caller,
        query: str,
        *,
        scope: DocumentScope = "all",
        k: int | None = None,
        score_threshold: float | None = None,
    ) -> list[Source]:
        """The caller's indexed chunks in `scope` most similar to `query`, best first."""
        document_ids = None if isinstance(scope, str) else list(scope)
        if document_ids is not None and not document_ids:
            return []
        model = self._gateway.embedding(caller, "retrieval")
        [vector] = await model.embed([query])
        return await self._store.search(
            caller.user_id,
            vector,
            limit=k or self._settings.k,
            score_threshold=(
                self._settings.score_threshold if score_threshold is None else score_threshold
            ),
            document_ids=document_ids,
        )
