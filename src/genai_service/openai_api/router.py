"""`/v1` routes: thin handlers over the chat, completion, embedding and model services."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Response
from fastapi.sse import format_sse_event
from loguru import logger
from pydantic import BaseModel

from genai_service.gateway.dependencies import CallHeaders, ModelRouteCaller
from genai_service.inference.dependencies import GatewayDep, ModelsDep
from genai_service.kit.errors import AppError
from genai_service.kit.event_streams import NO_BUFFERING, EventStreamResponse, event_stream
from genai_service.kit.problems import openai_error_of
from genai_service.openai_api.chat_schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionCreate,
)
from genai_service.openai_api.chat_service import ChatCompletionService
from genai_service.openai_api.completion_schemas import Completion, CompletionCreate
from genai_service.openai_api.completion_service import CompletionService
from genai_service.openai_api.schemas import EmbeddingCreate, EmbeddingList, ModelCard, ModelList
from genai_service.openai_api.service import OpenAIService
from genai_service.runtime import RuntimeDep, SettingsDep

# Any caller, the anonymous user included when anonymous mode is on; an API key works as
# `Authorization: Bearer gsk_...`, so the `openai` client's `api_key` does. Every route's service
# takes the caller (`ModelRouteCaller`), checked before the model runs, in a session that is
# closed by then.
router = APIRouter(prefix="/v1", tags=["openai"])

STREAM_DONE = format_sse_event(data_str="[DONE]")
T = TypeVar("T")


async def get_openai_service(
    models: ModelsDep,
    gateway: GatewayDep,
    caller: ModelRouteCaller,
    settings: SettingsDep,
    headers: CallHeaders,
) -> OpenAIService:
    limit = settings.inference.max_embedding_request_tokens
    return OpenAIService(
        models, gateway, caller, max_embedding_request_tokens=limit, headers=headers
    )


ServiceDep = Annotated[OpenAIService, Depends(get_openai_service)]


# The busiest routes' dependencies take the runtime rather than `GatewayDep`: FastAPI solves each
# dependency of a tree for every request, a few microseconds apiece.
async def get_chat_completions(
    runtime: RuntimeDep, caller: ModelRouteCaller, headers: CallHeaders
) -> ChatCompletionService:
    return ChatCompletionService(runtime.gateway, caller, headers)


ChatCompletionsDep = Annotated[ChatCompletionService, Depends(get_chat_completions)]


async def get_completions(
    runtime: RuntimeDep, caller: ModelRouteCaller, headers: CallHeaders
) -> CompletionService:
    return CompletionService(runtime.gateway, caller, headers)


CompletionsDep = Annotated[CompletionService, Depends(get_completions)]


async def _sse(items: AsyncIterator[T], encode: Callable[[T], bytes]) -> AsyncIterator[bytes]:
    """The events of `items`, then `[DONE]`. A call that fails once its stream has begun (the
    status line is sent) ends it with an error event in OpenAI's shape instead, which the SDKs
    raise."""
    try:
        async for events in event_stream(items, encode):
            yield events
    except AppError as error:
        logger.warning("{} failed mid-stream: {}", type(error).__name__, error.detail)
        yield format_sse_event(data_str=json.dumps(openai_error_of(error)))
        return
    yield STREAM_DONE


def _data_line(chunk: BaseModel) -> bytes:
    """A chunk's event. Its JSON has no line break, so it is the one `data:` line, as is."""
    return b"data: %s\n\n" % chunk.model_dump_json().encode()


def _data_lines(chunks: list[ChatCompletionChunk]) -> bytes:
    return b"".join(map(_data_line, chunks))


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={200: {"content": {"text/event-stream": {}}, "description": "With `stream: true`"}},
)
async def create_chat_completion(
    body: ChatCompletionCreate,
    service: ChatCompletionsDep,
    headers: CallHeaders,
    response: Response,
) -> ChatCompletion | EventStreamResponse:
    """The rate-limit headers (`x-ratelimit-*`) tell where the caller stands once admitted."""
    if not body.stream:
        completion = await service.complete(body)
        response.headers.update(headers)
        return completion
    chunks = await service.stream(body)
    return EventStreamResponse(_sse(chunks, _data_lines), headers=NO_BUFFERING | headers)


@router.post(
    "/completions",
    response_model=Completion,
    responses={200: {"content": {"text/event-stream": {}}, "description": "With `stream: true`"}},
)
async def create_completion(
    body: CompletionCreate, service: CompletionsDep, headers: CallHeaders, response: Response
) -> Completion | EventStreamResponse:
    """OpenAI's legacy text completions: the prompt is continued as it is, no chat template."""
    if not body.stream:
        completion = await service.complete(body)
        response.headers.update(headers)
        return completion
    chunks = await service.stream(body)
    return EventStreamResponse(_sse(chunks, _data_line), headers=NO_BUFFERING | headers)


@router.post("/embeddings")
async def create_embeddings(
    body: EmbeddingCreate, service: ServiceDep, headers: CallHeaders, response: Response
) -> EmbeddingList:
    """At most 2,048 inputs and `GENAI_INFERENCE__MAX_EMBEDDING_REQUEST_TOKENS` tokens; an input
    longer than the model reads is `400` unless `truncate` is set. `usage` counts the model's
    own tokens (special tokens included)."""
    embeddings = await service.embed(body)
    response.headers.update(headers)
    return embeddings


@router.get("/models")
async def list_models(service: ServiceDep) -> ModelList:
    return service.list_models()


@router.get("/models/{model_id}", responses={404: {"description": "No such model"}})
async def get_model(model_id: str, service: ServiceDep) -> ModelCard:
    return service.get_model(model_id)
