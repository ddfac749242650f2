from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from genai_service.retrieval.service import RetrievalService


def get_retrieval_service(request: Request) -> RetrievalService:
    service: RetrievalService = request.app.state.source_retriever
    return service


RetrievalServiceDep = Annotated[RetrievalService, Depends(get_retrieval_service)]
