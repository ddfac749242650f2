"""`/api/conversations`: conversations, their messages, and chat turns."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from fastapi.sse import EventSourceResponse

from genai_service.auth.dependencies import CurrentUser
from genai_service.conversations.dependencies import (
    ConversationServiceDep,
    TurnServiceDep,
)
from genai_service.conversations.schemas import (
    ConversationCreate,
    ConversationRead,
    ConversationUpdate,
    MessageRead,
    TurnCreate,
    TurnRead,
)
from genai_service.conversations.websocket import router as websocket_router
from genai_service.gateway.dependencies import ModelRouteCaller
from genai_service.generations.dependencies import EventLogDep
from genai_service.generations.sse import GENERATION_ID_HEADER, sse_stream
from genai_service.kit.event_streams import NO_BUFFERING
from genai_service.kit.pagination import Page, PaginationDep
from genai_service.runtime import SettingsDep

router = APIRouter(prefix="/api/conversations", tags=["conversations"])
router.include_router(websocket_router)

TURN_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/event-stream": {}},
        "description": "With `stream: true`: the generation's events as SSE.",
    },
    404: {"description": "No such conversation, or it was deleted while the reply was written."},
    409: {"description": "A reply is already being written in this conversation."},
    502: {"description": "The model failed; the failed reply is stored."},
}


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_conversation(
    body: ConversationCreate, user: CurrentUser, service: ConversationServiceDep
) -> ConversationRead:
    return ConversationRead.model_validate(await service.create(user, body))


@router.get("")
async def list_conversations(
    user: CurrentUser,
    page: PaginationDep,
    service: ConversationServiceDep,
    q: Annotated[str | None, Query(max_length=200, description="Text the title contains.")] = None,
) -> Page[ConversationRead]:
    """The caller's conversations, most recently active first."""
    conversations, total = await service.list_for(user, page, query=q)
    items = [ConversationRead.model_validate(conversation) for conversation in conversations]
    return Page.of(items, total=total, params=page)


@router.get("/{conversation_id}", responses={404: {}})
async def get_conversation(
    conversation_id: uuid.UUID, user: CurrentUser, service: ConversationServiceDep
) -> ConversationRead:
    return ConversationRead.model_validate(await service.get(user, conversation_id))


@router.patch("/{conversation_id}", responses={404: {}})
async def update_conversation(
    conversation_id: uuid.UUID,
    body: ConversationUpdate,
    user: CurrentUser,
    service: ConversationServiceDep,
) -> ConversationRead:
    """Change the fields sent; `null` clears one."""
    return ConversationRead.model_validate(await service.update(user, conversation_id, body))


@router.delete("/{conversation_id}", status_code=status.HTTP_204_NO_CONTENT, responses={404: {}})
async def delete_conversation(
    conversation_id: uuid.UUID, user: CurrentUser, service: ConversationServiceDep
) -> None:
    """Delete the conversation, its messages and generations. A reply being written is stopped
    and dropped; its followers get an `error` event with `reason: conversation-deleted`."""
    await service.delete(user, conversation_id)


@router.get("/{conversation_id}/messages", responses={404: {}})
async def list_messages(
    conversation_id: uuid.UUID,
    user: CurrentUser,
    page: PaginationDep,
    service: ConversationServiceDep,
) -> Page[MessageRead]:
    """The conversation's messages, oldest first."""
    messages, total = await service.list_messages(user, conversation_id, page)
    return Page.of([MessageRead.model_validate(m) for m in messages], total=total, params=page)


@router.post(
    "/{conversation_id}/messages",
    status_code=status.HTTP_201_CREATED,
    response_model=TurnRead,
    responses=TURN_RESPONSES,
)
async def send_message(
    conversation_id: uuid.UUID,
    body: TurnCreate,
    caller: ModelRouteCaller,
    turns: TurnServiceDep,
    events: EventLogDep,
    settings: SettingsDep,
) -> TurnRead | EventSourceResponse:
    """Ask in the conversation. The question is stored at once and the server writes the reply
    even if the client goes away; `stream: true` streams it as SSE (`generation`, `delta`...,
    then `done` or `error`), resumable at `/api/generations/{id}/events`."""
    started = await turns.start(caller, conversation_id, body)
    if not body.stream:
        return await turns.wait(started)
    stream = sse_stream(
        await events.subscribe(started.generation_id),
        heartbeat_seconds=settings.conversations.heartbeat_seconds,
    )
    headers = {**NO_BUFFERING, GENERATION_ID_HEADER: str(started.generation_id)}
    return EventSourceResponse(stream, headers=headers)
