from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from genai_service.retrieval.service import RetrievalService
from genai_service.retrieval.sources import DocumentsUnavailable


def get_retrieval_service(request: Request) -> RetrievalService:
    service: RetrievalService | None = request.app.state.source_retriever
    if service is None:
        raise DocumentsUnavailable(
            "searching documents needs an embedding model; none is configured"
        )
    return service


RetrievalServiceDep = Annotated[RetrievalService, Depends(get_retrieval_service)]
