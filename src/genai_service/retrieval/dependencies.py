from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from genai_service.retrieval.service import RetrievalService
from genai_service.retrieval.sources import DocumentsUnavailable
from genai_service.runtime import RuntimeDep


async def get_retrieval_service(runtime: RuntimeDep) -> RetrievalService:
    if runtime.retriever is None:
        raise DocumentsUnavailable(
            "searching documents needs an embedding model; none is configured"
        )
    return runtime.retriever


RetrievalServiceDep = Annotated[RetrievalService, Depends(get_retrieval_service)]
