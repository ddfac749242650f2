"""`/api/generations`: follow, inspect and cancel the replies the server is writing."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.sse import EventSourceResponse

from genai_service.auth.dependencies import CurrentUser, ModelCaller
from genai_service.generations.dependencies import GenerationServiceDep
from genai_service.generations.schemas import GenerationRead
from genai_service.generations.sse import sse_stream
from genai_service.kit.event_streams import NO_BUFFERING
from genai_service.runtime import SettingsDep

router = APIRouter(prefix="/api/generations", tags=["generations"])

EVENT_STREAM: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "The events, as SSE."},
    404: {},
    410: {"description": "The events are no longer kept."},
}


@router.get("/{generation_id}", responses={404: {}})
async def get_generation(
    generation_id: uuid.UUID, user: CurrentUser, service: GenerationServiceDep
) -> GenerationRead:
    """Status of a generation, and its reply's message id once stored."""
    return GenerationRead.model_validate(await service.get(user, generation_id))


@router.get("/{generation_id}/events", responses=EVENT_STREAM)
async def follow_generation(
    generation_id: uuid.UUID,
    user: CurrentUser,
    service: GenerationServiceDep,
    settings: SettingsDep,
    last_event_id: Annotated[
        int | None,
        Header(alias="Last-Event-ID", ge=0, description="Replay only the events after this id."),
    ] = None,
) -> EventSourceResponse:
    """The generation's events: replayed from the start (or after `Last-Event-ID`), then live
    until its `done` or `error` event. A finished generation's events are kept for a while."""
    events = await service.follow(user, generation_id, after=last_event_id or 0)
    stream = sse_stream(events, heartbeat_seconds=settings.conversations.heartbeat_seconds)
    return EventSourceResponse(stream, headers=NO_BUFFERING)


CANCEL_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {},
    409: {
        "description": "The generation is not running, or another server process writes it "
        "(it cannot be reached from this one; `Retry-After` says when it counts as stopped)."
    },
}


@router.post("/{generation_id}/cancel", responses=CANCEL_RESPONSES)
async def cancel_generation(
    generation_id: uuid.UUID, user: ModelCaller, service: GenerationServiceDep
) -> GenerationRead:
    """Stop a running generation; its partial reply is stored with `status: cancelled`. A
    generation whose server stopped is stored as cancelled at once, with an empty reply."""
    return GenerationRead.model_validate(await service.cancel(user, generation_id))
