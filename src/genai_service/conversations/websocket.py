"""`WS /api/conversations/{id}/ws`: chat turns over a WebSocket.

The client sends `{"type": "message", "content": ...}` (plus optional `max_tokens`,
`temperature`, `seed`, `documents`), `{"type": "follow", "generation_id": ..., "after": n}` (the
events after `n` of a reply of this conversation being written — started over HTTP, or by an
earlier socket, on any server process when they share Redis) or `{"type": "cancel"}` (of the
reply this socket started or follows). The server sends the events of SSE
as JSON frames: `{"type": "generation" | "delta" | "done" | "error", "id": n, "data": {...}}`.
A frame the server cannot act on gets an `error` frame without an `id`; the socket stays open.
A turn refused by the caller's rate limits gets one with `status` 429 and `retry_after` (seconds).
Closing codes: 1008 for a bad credential, 4404 for a conversation that is not the caller's.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect, status
from loguru import logger
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from genai_service.auth.dependencies import verify_outside_request_session
from genai_service.conversations.dependencies import turn_service_of
from genai_service.conversations.schemas import DocumentsField, TurnCreate
from genai_service.conversations.turns import TurnService
from genai_service.gateway.caller import Caller
from genai_service.generations.events import GenerationEvent
from genai_service.kit.async_iterators import close_iterator
from genai_service.kit.errors import AppError
from genai_service.runtime import runtime_of

CLOSE_NOT_FOUND = 4404
"""Application close code: no such conversation for this caller (HTTP's 404)."""

router = APIRouter()


class MessageFrame(BaseModel):
    type: Literal["message"]
    content: str = Field(min_length=1, max_length=100_000)
    max_tokens: int | None = Field(default=None, ge=1, le=32_768)
    temperature: float | None = Field(default=None, ge=0, le=2)
    seed: int | None = None
    documents: DocumentsField = None


class FollowFrame(BaseModel):
    type: Literal["follow"]
    generation_id: uuid.UUID
    after: int = Field(default=0, ge=0)
    """The id of the last event the client has (as SSE's `Last-Event-ID`)."""


class CancelFrame(BaseModel):
    type: Literal["cancel"]


Frame = TypeAdapter[MessageFrame | FollowFrame | CancelFrame](
    Annotated[MessageFrame | FollowFrame | CancelFrame, Field(discriminator="type")]
)


def event_frame(event: GenerationEvent) -> dict[str, Any]:
    return {"type": event.type, "id": event.id, "data": event.data}


def problem_frame(
    status_code: int, title: str, detail: str, *, retry_after: str | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {"status": status_code, "title": title, "detail": detail}
    if retry_after is not None:
        data["retry_after"] = int(retry_after)
    return {"type": "error", "id": None, "data": data}


class ConversationSocket:
    """One connected client of one conversation."""

    def __init__(
        self,
        websocket: WebSocket,
        turns: TurnService,
        caller: Caller,
        conversation_id: uuid.UUID,
    ) -> None:
        self.websocket = websocket
        self.turns = turns
        self.caller = caller
        self.conversation_id = conversation_id
        self._sending = asyncio.Lock()
        self._generation: uuid.UUID | None = None
        self._forwarding: asyncio.Task[None] | None = None
        self._forwarders: set[asyncio.Task[None]] = set()

    async def serve(self) -> None:
        try:
            while True:
                text = await self.websocket.receive_text()
                await self._handle(text)
        except WebSocketDisconnect:
            logger.debug("websocket of conversation {} closed", self.conversation_id)
        finally:
            # The generations go on; only sending their events to this socket stops.
            for task in self._forwarders:
                task.cancel()
            if self._forwarders:
                await asyncio.wait(self._forwarders)

    async def _handle(self, text: str) -> None:
        try:
            frame = Frame.validate_json(text)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in e['loc']) or 'frame'}: {e['msg']}"
                for e in error.errors()
            )
            await self._send(problem_frame(422, "Invalid frame", problems))
            return
        try:
            if isinstance(frame, CancelFrame):
                await self._cancel()
            elif isinstance(frame, FollowFrame):
                await self._follow(frame)
            else:
                await self._start(frame)
        except AppError as error:
            retry_after = error.headers.get("Retry-After")
            problem = problem_frame(
                error.status_code, error.title, error.detail, retry_after=retry_after
            )
            await self._send(problem)

    async def _start(self, frame: MessageFrame) -> None:
        turn = TurnCreate.model_validate(
            frame.model_dump(exclude={"type"}, exclude_unset=True) | {"stream": True}
        )
        started = await self.turns.start(self.caller, self.conversation_id, turn)
        events = await self.turns.events.subscribe(started.generation_id)
        self._forward_from(started.generation_id, events)

    async def _follow(self, frame: FollowFrame) -> None:
        events = await self.turns.follow(
            self.caller, self.conversation_id, frame.generation_id, after=frame.after
        )
        self._forward_from(frame.generation_id, events)

    def _forward_from(
        self, generation_id: uuid.UUID, events: AsyncIterator[GenerationEvent]
    ) -> None:
        self._generation = generation_id
        self._forwarding = asyncio.create_task(self._forward(events))
        self._forwarders.add(self._forwarding)
        self._forwarding.add_done_callback(self._forwarders.discard)

    async def _cancel(self) -> None:
        if self._generation is None or self._forwarding is None or self._forwarding.done():
            await self._send(problem_frame(409, "Nothing to cancel", "No reply is being written."))
            return
        await self.turns.events.request_cancel(self._generation)

    async def _forward(self, events: Any) -> None:
        """Send the events; when they cannot be read on (Redis unreachable), an error frame
        without an id says so, and the socket stays open to follow again after the last id."""
        try:
            async for event in events:
                await self._send(event_frame(event))
        except AppError as error:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await self._send(problem_frame(error.status_code, error.title, error.detail))
        except (WebSocketDisconnect, RuntimeError) as error:
            logger.debug("stopped forwarding to a closed websocket: {}", error)
        finally:
            await close_iterator(events)

    async def _send(self, frame: dict[str, Any]) -> None:
        async with self._sending:
            await self.websocket.send_json(frame)


@router.websocket("/{conversation_id}/ws")
async def conversation_websocket(
    websocket: WebSocket,
    conversation_id: uuid.UUID,
    token: Annotated[str | None, Query(description="An access token or API key.")] = None,
) -> None:
    await websocket.accept()
    runtime = runtime_of(websocket.app)
    try:
        caller = Caller.of(await verify_outside_request_session(runtime, token))
    except AppError as error:
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason=error.detail[:120])
        return
    turns = turn_service_of(runtime)
    try:
        await turns.conversation_for(caller.user_id, conversation_id)
    except AppError as error:
        await websocket.close(code=CLOSE_NOT_FOUND, reason=error.detail[:120])
        return
    with contextlib.suppress(WebSocketDisconnect):
        await ConversationSocket(websocket, turns, caller, conversation_id).serve()
