"""`/api/documents`: upload, follow ingestion, retry, cancel, delete."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Response, UploadFile, status
from fastapi.responses import PlainTextResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent

from genai_service.auth.dependencies import CurrentUser
from genai_service.documents.dependencies import DocumentServiceDep, IngestionRunnerDep
from genai_service.documents.schemas import DocumentProgress, DocumentRead
from genai_service.documents.service import watch_document
from genai_service.kit.pagination import Page, PaginationDep
from genai_service.models.document import Document
from genai_service.runtime import RuntimeDep

router = APIRouter(prefix="/api/documents", tags=["documents"])

EVENT_POLL_SECONDS = 0.5
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such document (or not the caller's)"}
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "Not possible in the document's current status"}
}
QUEUE_FULL: dict[int | str, dict[str, Any]] = {
    429: {"description": "The caller's documents waiting for ingestion take their whole share"}
}


async def owned_document(
    document_id: uuid.UUID, user: CurrentUser, service: DocumentServiceDep
) -> Document:
    return await service.get(user.id, document_id)


OwnedDocument = Annotated[Document, Depends(owned_document)]


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        200: {"description": "The same content was uploaded before: that document"},
        413: {"description": "Larger than the configured limit"},
        415: {"description": "Not plain text, Markdown, HTML or PDF"},
        **QUEUE_FULL,
    },
)
async def upload_document(
    file: UploadFile,
    user: CurrentUser,
    service: DocumentServiceDep,
    runner: IngestionRunnerDep,
    background: BackgroundTasks,
    response: Response,
) -> DocumentRead:
    """Upload one file and queue its ingestion; follow it with `GET /api/documents/{id}/events`.

    The type is detected from the content. Uploading content the caller already uploaded returns
    the existing document with `200`. While the caller's documents waiting for ingestion take
    `GENAI_DOCUMENTS__MAX_QUEUED_BYTES_PER_USER`, further uploads get `429` with `Retry-After`.
    """
    document, created = await service.upload(user.id, file.filename, file.read)
    if created and runner is not None:
        background.add_task(runner.wake)
    if not created:
        response.status_code = status.HTTP_200_OK
    return DocumentRead.model_validate(document)


@router.get("")
async def list_documents(
    user: CurrentUser, page: PaginationDep, service: DocumentServiceDep
) -> Page[DocumentRead]:
    documents, total = await service.list_for(user.id, page)
    return Page.of([DocumentRead.model_validate(d) for d in documents], total=total, params=page)


@router.get("/{document_id}", responses=NOT_FOUND)
async def get_document(document: OwnedDocument) -> DocumentRead:
    return DocumentRead.model_validate(document)


@router.get(
    "/{document_id}/text",
    response_class=PlainTextResponse,
    responses={**NOT_FOUND, 409: {"description": "The text is not extracted yet"}},
)
async def get_document_text(
    document_id: uuid.UUID, user: CurrentUser, service: DocumentServiceDep
) -> PlainTextResponse:
    """The text extracted from the file: chunk and citation offsets (`start`, `end`) index it."""
    text = await service.extracted_text(user.id, document_id)
    return PlainTextResponse(text)


@router.get("/{document_id}/events", response_class=EventSourceResponse, responses=NOT_FOUND)
async def document_events(
    document: OwnedDocument, runtime: RuntimeDep
) -> AsyncIterable[ServerSentEvent]:
    """Server-sent `progress` events as ingestion moves on; the stream ends at `indexed`,
    `failed` or `cancelled` (or with a `deleted` event)."""
    async for current in watch_document(
        runtime.sessionmaker, document.id, interval_s=EVENT_POLL_SECONDS
    ):
        if current is None:
            yield ServerSentEvent(event="deleted", data={"id": str(document.id)})
            return
        yield ServerSentEvent(
            event="progress", data=DocumentProgress.model_validate(current).model_dump(mode="json")
        )


@router.post("/{document_id}/retry", responses={**NOT_FOUND, **CONFLICT, **QUEUE_FULL})
async def retry_document(
    document_id: uuid.UUID,
    user: CurrentUser,
    service: DocumentServiceDep,
    runner: IngestionRunnerDep,
    background: BackgroundTasks,
) -> DocumentRead:
    """Queue a failed document's ingestion again."""
    document = await service.retry(user.id, document_id)
    if runner is not None:
        background.add_task(runner.wake)
    return DocumentRead.model_validate(document)


@router.post("/{document_id}/cancel", responses={**NOT_FOUND, **CONFLICT})
async def cancel_document(
    document_id: uuid.UUID, user: CurrentUser, service: DocumentServiceDep
) -> DocumentRead:
    """Stop a queued or running ingestion; what was indexed so far is removed."""
    return DocumentRead.model_validate(await service.cancel(user.id, document_id))


@router.delete("/{document_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_document(
    document_id: uuid.UUID, user: CurrentUser, service: DocumentServiceDep
) -> None:
    """Remove the document: its file, its extracted text and its vectors."""
    await service.delete(user.id, document_id)
