"""`/v1/responses`: OpenAI's Responses API, stateful through stored responses."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.sse import format_sse_event

from genai_service.auth.dependencies import ModelCaller
from genai_service.gateway.dependencies import CallHeaders, ModelRouteCaller
from genai_service.kit.event_streams import NO_BUFFERING, EventStreamResponse, event_stream
from genai_service.openai_api.responses.errors import StreamingNotSupported
from genai_service.openai_api.responses.events import StreamEvent
from genai_service.openai_api.responses.objects import ResponseDeleted, ResponseRead
from genai_service.openai_api.responses.schemas import Includable, ResponseCreate
from genai_service.openai_api.responses.service import ResponseService
from genai_service.runtime import RuntimeDep

# The caller is checked outside the request's session (`ModelCaller`): a response can take
# minutes, and the service opens its own short transactions.
router = APIRouter(prefix="/v1/responses", tags=["openai"])


async def get_response_service(runtime: RuntimeDep) -> ResponseService:
    return ResponseService(runtime.gateway, runtime.sessionmaker)


ResponseServiceDep = Annotated[ResponseService, Depends(get_response_service)]


def _encoded(event: StreamEvent) -> bytes:
    return format_sse_event(event=event.type, data_str=event.model_dump_json(by_alias=True))


@router.post(
    "",
    response_model=ResponseRead,
    responses={200: {"content": {"text/event-stream": {}}, "description": "With `stream: true`"}},
)
async def create_response(
    body: ResponseCreate,
    caller: ModelRouteCaller,
    service: ResponseServiceDep,
    headers: CallHeaders,
    response: Response,
) -> ResponseRead | EventStreamResponse:
    if not body.stream:
        created = await service.create(body, caller, headers)
        response.headers.update(headers)
        return created
    events = await service.stream(body, caller, headers)
    return EventStreamResponse(event_stream(events, _encoded), headers=NO_BUFFERING | headers)


@router.get("/{response_id}", responses={404: {}})
async def get_response(
    response_id: str,
    caller: ModelCaller,
    service: ResponseServiceDep,
    include: Annotated[list[Includable] | None, Query(description="No effect here")] = None,
    stream: bool = False,
) -> ResponseRead:
    """A stored response of the caller. `include` has no effect: what a response holds is
    settled when it is created."""
    if stream:
        raise StreamingNotSupported(
            "a stored response cannot be streamed again here; get it whole", param="stream"
        )
    return await service.retrieve(response_id, caller.id)


@router.delete("/{response_id}", responses={404: {}})
async def delete_response(
    response_id: str, caller: ModelCaller, service: ResponseServiceDep
) -> ResponseDeleted:
    return await service.delete(response_id, caller.id)
