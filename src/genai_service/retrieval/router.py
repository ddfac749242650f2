"""`POST /api/search`: what retrieval finds for a query, to see what a chat turn would cite."""

from __future__ import annotations

from fastapi import APIRouter

from genai_service.gateway.dependencies import CallerDep
from genai_service.retrieval.dependencies import RetrievalServiceDep
from genai_service.retrieval.schemas import SearchHit, SearchRequest, SearchResponse
from genai_service.retrieval.sources import DocumentScope

router = APIRouter(prefix="/api/search", tags=["documents"])


@router.post("")
async def search(
    body: SearchRequest, caller: CallerDep, service: RetrievalServiceDep
) -> SearchResponse:
    """The caller's indexed chunks most similar to `query`, best first, with their scores."""
    scope: DocumentScope = "all" if body.documents is None else body.documents
    sources = await service.search(caller, body.query, scope=scope, k=body.k)
    return SearchResponse(results=[SearchHit.model_validate(source) for source in sources])
