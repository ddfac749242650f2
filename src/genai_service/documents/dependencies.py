"""The documents domain's services, built per request from the app's shared parts."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from genai_service.documents.runner import IngestionRunner
from genai_service.documents.service import DocumentService
from genai_service.retrieval.vector_store import VectorStore
from genai_service.runtime import RuntimeDep, SessionDep


async def get_vector_store(runtime: RuntimeDep) -> VectorStore:
    if runtime.vector_store is None:
        raise RuntimeError("the server runs without a vector store")
    return runtime.vector_store


VectorStoreDep = Annotated[VectorStore, Depends(get_vector_store)]


async def get_document_service(
    session: SessionDep, runtime: RuntimeDep, store: VectorStoreDep
) -> DocumentService:
    settings = runtime.settings
    return DocumentService(
        session,
        storage=runtime.storage,
        store=store,
        max_upload_bytes=settings.documents.max_upload_bytes,
        max_queued_bytes=settings.documents.max_queued_bytes_per_user,
    )


DocumentServiceDep = Annotated[DocumentService, Depends(get_document_service)]


async def get_ingestion_runner(runtime: RuntimeDep) -> IngestionRunner | None:
    """The in-process runner; `None` when ingestion runs in `genai-service worker` processes."""
    return runtime.ingestion


IngestionRunnerDep = Annotated[IngestionRunner | None, Depends(get_ingestion_runner)]
