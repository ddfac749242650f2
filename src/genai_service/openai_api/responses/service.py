"""`/v1/responses`: create a response (plain or streamed), keep it, read it back, delete it.

A request waits for the model for as long as the reply takes, so it holds no database
transaction meanwhile: the service opens short ones of its own — one to read the conversation it
continues, one to keep the response — like the chat turns of `conversations.turns` do.
"""

from __future__ import annotations

import asyncio
import bisect
import time
import uuid
from collections.abc import AsyncIterator, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from loguru import logger
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from genai_service.gateway.caller import Caller
from genai_service.gateway.gateway import ModelGateway
from genai_service.inference.base import (
    ChatChunk,
    ChatModel,
    ProviderError,
    Usage,
    prime,
)
from genai_service.kit.async_iterators import close_iterator
from genai_service.kit.errors import AppError, BadRequest
from genai_service.models.response import StoredResponse
from genai_service.openai_api.responses.errors import ResponseNotFound
from genai_service.openai_api.responses.events import StreamEvent
from genai_service.openai_api.responses.items import InputItem, dumped, stored_items
from genai_service.openai_api.responses.objects import (
    FunctionToolRead,
    ResponseDeleted,
    ResponseRead,
)
from genai_service.openai_api.responses.repository import ResponseRepository
from genai_service.openai_api.responses.request import (
    ModelCall,
    max_output_tokens,
    model_call,
    require_answered_calls,
    to_messages,
    tool_choice_read,
)
from genai_service.openai_api.responses.schemas import ResponseCreate, TextConfig, TextFormat
from genai_service.openai_api.responses.writer import ResponseWriter, response_id

NO_FINISH = "the model stream ended without a finish reason"
SERVER_FAILURE = "the server failed while writing this response"


@dataclass(frozen=True, slots=True)
class _Run:
    """A request ready for the model."""

    model: ChatModel
    call: ModelCall
    items: list[InputItem]
    """The conversation the model reads, after the instructions."""
    draft: ResponseRead
    owner_id: uuid.UUID


def newest_items_that_fit(
    model: ChatModel, instructions: str | None, items: Sequence[InputItem], max_tokens: int
) -> list[InputItem]:
    """`truncation: "auto"`: the newest items whose prompt leaves room for `max_tokens` (at least
    the newest one; if even that is too long, the model refuses it). Counting tokenizes: call it
    off the event loop."""
    budget = model.context_window - max_tokens

    def fits(start: int) -> bool:
        return model.count_tokens(to_messages(instructions, items[start:])) <= budget

    start = bisect.bisect_left(range(len(items) - 1), True, key=fits)
    return list(items[start:])


class ResponseService:
    def __init__(
        self, gateway: ModelGateway, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        self.gateway = gateway
        self._sessionmaker = sessionmaker

    async def create(
        self,
        body: ResponseCreate,
        caller: Caller,
        headers: MutableMapping[str, str] | None = None,
    ) -> ResponseRead:
        """`headers`: receives the rate-limit headers of the call when it is admitted."""
        run = await self._prepare(body, caller, headers)
        chunks = await self._open(run)
        writer = ResponseWriter(run.draft, logprobs=body.wants_logprobs)
        try:
            final = await _drain(writer, chunks)
        finally:
            await close_iterator(chunks)
        await self._keep(run, final)
        return final

    async def stream(
        self,
        body: ResponseCreate,
        caller: Caller,
        headers: MutableMapping[str, str] | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Admission errors (unknown model or response, prompt too long, a rate limit, ...)
        raise here, before the first event; later failures end the stream with
        `response.failed`."""
        run = await self._prepare(body, caller, headers)
        chunks = await self._open(run)
        return self._events(run, chunks, ResponseWriter(run.draft, logprobs=body.wants_logprobs))

    async def retrieve(self, response_id: str, owner_id: uuid.UUID) -> ResponseRead:
        async with self._sessionmaker.begin() as session:
            stored = await ResponseRepository(session).get_for_owner(response_id, owner_id)
            if stored is None:
                raise ResponseNotFound(f"no response with id {response_id!r}")
            return ResponseRead.model_validate(stored.body)

    async def delete(self, response_id: str, owner_id: uuid.UUID) -> ResponseDeleted:
        async with self._sessionmaker.begin() as session:
            if not await ResponseRepository(session).delete_for_owner(response_id, owner_id):
                raise ResponseNotFound(f"no response with id {response_id!r}")
        return ResponseDeleted(id=response_id)

    async def _prepare(
        self, body: ResponseCreate, caller: Caller, headers: MutableMapping[str, str] | None
    ) -> _Run:
        model = self.gateway.chat(caller, "response", body.model, headers=headers)
        name, owner_id = model.name, caller.user_id
        earlier = await self._context(body.previous_response_id, owner_id)
        given = body.input
        require_answered_calls(earlier, given)
        items = [*earlier, *given]
        if body.truncation == "auto":
            items = await asyncio.to_thread(
                newest_items_that_fit, model, body.instructions, items, max_output_tokens(body)
            )
        call = model_call(body, to_messages(body.instructions, items))
        return _Run(model, call, items, _draft(body, name, call), owner_id)

    async def _context(self, previous_id: str | None, owner_id: uuid.UUID) -> list[InputItem]:
        """The conversation a response continues: the stored context of `previous_id`."""
        if previous_id is None:
            return []
        async with self._sessionmaker.begin() as session:
            stored = await ResponseRepository(session).get_for_owner(previous_id, owner_id)
            if stored is None:
                raise ResponseNotFound(
                    f"no response with id {previous_id!r}", param="previous_response_id"
                )
            return stored_items.validate_python(stored.context)

    async def _open(self, run: _Run) -> AsyncIterator[ChatChunk]:
        try:
            return await prime(run.model.stream(run.call.request))
        except BadRequest as error:
            raise run.call.in_body_terms(error) from None

    async def _events(
        self, run: _Run, chunks: AsyncIterator[ChatChunk], writer: ResponseWriter
    ) -> AsyncIterator[StreamEvent]:
        for event in writer.opening():
            yield event
        try:
            final: ResponseRead | None = None
            async for chunk in chunks:
                for event in writer.add(chunk):
                    yield event
                if chunk.finish_reason is not None:
                    closing, final = writer.finish(chunk.finish_reason, chunk.usage or Usage(0, 0))
                    for event in closing:
                        yield event
                    break
            if final is None:
                raise ProviderError(NO_FINISH)
            await self._keep(run, final)
        except Exception as error:
            final = writer.fail(_failure(error))
            await self._keep_failure(run, final)
        finally:
            await close_iterator(chunks)
        yield writer.ended(final)

    async def _keep(self, run: _Run, final: ResponseRead) -> None:
        if not final.store:
            return
        output: list[dict[str, Any]] = [
            item.model_dump(mode="json", exclude_none=True) for item in final.output
        ]
        record = StoredResponse(
            id=final.id,
            owner_id=run.owner_id,
            body=final.model_dump(mode="json", by_alias=True),
            context=[*dumped(run.items), *output],
        )
        async with self._sessionmaker.begin() as session:
            await ResponseRepository(session).add(record)

    async def _keep_failure(self, run: _Run, final: ResponseRead) -> None:
        """A failed response is kept like any other; if that fails too, the log says so."""
        try:
            await self._keep(run, final)
        except Exception:
            logger.exception("a failed response could not be stored")


async def _drain(writer: ResponseWriter, chunks: AsyncIterator[ChatChunk]) -> ResponseRead:
    async for chunk in chunks:
        writer.add(chunk)
        if chunk.finish_reason is not None:
            return writer.finish(chunk.finish_reason, chunk.usage or Usage(0, 0))[1]
    raise ProviderError(NO_FINISH)


def _failure(error: Exception) -> str:
    """What a client is told about a failure mid-stream: an error's own words, or nothing of a
    bug's (that goes to the log)."""
    if isinstance(error, AppError):
        return error.detail
    logger.opt(exception=error).error("a streamed response failed")
    return SERVER_FAILURE


def _draft(body: ResponseCreate, model: str, call: ModelCall) -> ResponseRead:
    """The response before the model writes it: everything the request settled."""
    request = call.request
    text = body.text or TextConfig()
    if text.format is None:
        text = text.model_copy(update={"format": TextFormat(type="text")})
    return ResponseRead(
        id=response_id(),
        created_at=int(time.time()),
        status="in_progress",
        model=model,
        instructions=body.instructions,
        output=[],
        previous_response_id=body.previous_response_id,
        store=body.store is not False,
        max_output_tokens=request.sampling.max_tokens,
        temperature=request.sampling.temperature,
        top_p=request.sampling.top_p,
        top_logprobs=body.top_logprobs,
        truncation=body.truncation or "disabled",
        text=text,
        tools=[
            FunctionToolRead(
                name=spec.name,
                description=spec.description,
                parameters=spec.parameters,
                strict=spec.strict,
            )
            for spec in body.tools or []
        ],
        tool_choice=tool_choice_read(body),
        parallel_tool_calls=request.parallel_tool_calls,
        metadata=body.metadata or {},
        user=body.user,
        safety_identifier=body.safety_identifier,
    )
