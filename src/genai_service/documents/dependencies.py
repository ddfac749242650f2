"""The documents domain's services, built per request from the app's shared parts."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from genai_service.documents.runner import IngestionRunner
from genai_service.documents.service import DocumentService
from genai_service.documents.storage import DocumentStorage
from genai_service.kit.db import SessionDep
from genai_service.retrieval.vector_store import VectorStore
from genai_service.settings import SettingsDep


def get_vector_store(request: Request) -> VectorStore:
    store: VectorStore = request.app.state.vector_store
    return store


VectorStoreDep = Annotated[VectorStore, Depends(get_vector_store)]


def get_document_service(
    session: SessionDep, settings: SettingsDep, store: VectorStoreDep
) -> DocumentService:
    return DocumentService(
        session,
        storage=DocumentStorage(settings.documents_dir),
        store=store,
        max_upload_bytes=settings.documents.max_upload_bytes,
        max_queued_bytes=settings.documents.max_queued_bytes_per_user,
    )


DocumentServiceDep = Annotated[DocumentService, Depends(get_document_service)]


def get_ingestion_runner(request: Request) -> IngestionRunner | None:
    """The in-process runner; `None` when ingestion runs in `genai-service worker` processes."""
    runner: IngestionRunner | None = getattr(request.app.state, "ingestion_runner", None)
    return runner


IngestionRunnerDep = Annotated[IngestionRunner | None, Depends(get_ingestion_runner)]
