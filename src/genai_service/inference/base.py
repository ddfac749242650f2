"""The protocols every chat and embedding provider implements, and the types they exchange."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar, runtime_checkable

from genai_service.kit.async_iterators import close_iterator
from genai_service.kit.errors import (
    AppError,
    BadGateway,
    BadRequest,
    GatewayTimeout,
    NotFound,
    ServiceUnavailable,
)

T = TypeVar("T")
Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length", "cancelled"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class SamplingParams:
    max_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class ChatRequest:
    messages: Sequence[ChatMessage]
    sampling: SamplingParams = field(default_factory=SamplingParams)


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class ChatChunk:
    """A piece of a streamed reply. The last chunk has `finish_reason` and `usage` set."""

    text: str
    finish_reason: FinishReason | None = None
    usage: Usage | None = None


@dataclass(frozen=True, slots=True)
class ChatResult:
    text: str
    finish_reason: FinishReason
    usage: Usage


@runtime_checkable
class ChatModel(Protocol):
    """A chat model. `complete` and `stream` go through the same request/response processing."""

    @property
    def context_window(self) -> int:
        """Tokens one sequence may hold: prompt plus reply."""
        ...

    @property
    def ready(self) -> bool: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Tokens the formatted prompt of `messages` takes (an estimate for remote models)."""
        ...

    def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]: ...

    async def complete(self, request: ChatRequest) -> ChatResult: ...


@runtime_checkable
class EmbeddingModel(Protocol):
    @property
    def dimension(self) -> int: ...

    @property
    def ready(self) -> bool: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


@runtime_checkable
class TokenSpanner(Protocol):
    """An embedding model that can show how it splits text: the character span of each token.

    Ingestion uses it to cut documents into chunks that fit the model's input exactly.
    """

    async def token_spans(self, text: str) -> list[tuple[int, int]]:
        """`(start, end)` character offsets into `text` of each token, in order."""
        ...


async def collect(chunks: AsyncIterator[ChatChunk]) -> ChatResult:
    """Drain a stream into one result: how every provider implements `complete`."""
    parts: list[str] = []
    async for chunk in chunks:
        parts.append(chunk.text)
        if chunk.finish_reason is not None:
            usage = chunk.usage or Usage(prompt_tokens=0, completion_tokens=0)
            return ChatResult(text="".join(parts), finish_reason=chunk.finish_reason, usage=usage)
    raise ProviderError("the model stream ended without a finish reason")


class ModelNotFound(NotFound):
    title = "Model not found"
    slug = "model-not-found"


class PromptTooLong(BadRequest):
    title = "Prompt too long"
    slug = "context-length-exceeded"


class ModelOverloaded(ServiceUnavailable):
    title = "Model overloaded"
    slug = "model-overloaded"


class ModelNotReady(ServiceUnavailable):
    title = "Model not ready"
    slug = "model-not-ready"


class ProviderError(BadGateway):
    """A provider failed in a way worth trying the next provider of the chain for."""

    title = "Model provider error"
    slug = "provider-error"


class ModelProcessStopped(ProviderError):
    """The process running a local model died (killed, out of memory) while it held the request."""

    title = "Model process stopped"
    slug = "model-process-stopped"


class GenerationTimeout(GatewayTimeout):
    title = "Generation timed out"
    slug = "generation-timeout"


RETRYABLE_ERRORS: tuple[type[AppError], ...] = (ProviderError, GenerationTimeout, ModelNotReady)


async def prime(stream: AsyncIterator[T]) -> AsyncIterator[T]:
    """Wait for the first item of `stream`, so errors before it surface before a response starts.

    A streamed HTTP response commits to `200` with its first byte; admission errors (unknown
    model, prompt too long, queue full) must become proper status codes instead.
    """
    first = await anext(stream)

    async def replay() -> AsyncIterator[T]:
        try:
            yield first
            async for item in stream:
                yield item
        finally:
            await close_iterator(stream)

    return replay()
