"""The protocols every chat and embedding provider implements, and the types they exchange."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

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
Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "cancelled"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call of one of the request's tools, as the model wrote it."""

    id: str
    name: str
    arguments: str
    """The arguments as a JSON text (OpenAI's shape: a string, not an object)."""


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    """Calls an assistant message made (its `content` may then be empty)."""
    tool_call_id: str | None = None
    """For a `tool` message: the call it answers."""
    name: str | None = None


@dataclass(frozen=True, slots=True)
class SamplingParams:
    max_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float = 0.0
    """Subtracted once from the logit of every token the reply already contains."""
    frequency_penalty: float = 0.0
    """Subtracted from a token's logit once for each time the reply already contains it."""
    repetition_penalty: float = 1.0
    """Divides the logits of tokens seen before (vLLM's and llama.cpp's multiplicative penalty);
    1.0 is off."""
    top_k: int = 0
    """Keep only the k most likely tokens; 0 is off."""
    min_p: float = 0.0
    """Drop tokens less likely than `min_p` times the most likely one; 0 is off."""
    logit_bias: tuple[tuple[int, float], ...] = ()
    """(token id, bias) pairs added to the logits, ids in the model's own vocabulary."""
    logprobs: int | None = None
    """`None`: no log-probabilities; k: the chosen token's, with the k most likely alternatives."""


@dataclass(frozen=True, slots=True)
class JsonOutput:
    """The reply must be one JSON value: an object matching `schema`, or any object."""

    schema: Mapping[str, Any] | None = None
    """`None`: any JSON object (OpenAI's `json_object` mode)."""
    name: str = "response"


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call, described by a JSON Schema of its arguments."""

    name: str
    parameters: Mapping[str, Any]
    description: str | None = None


@dataclass(frozen=True, slots=True)
class ForcedTool:
    """`tool_choice` naming one function: the reply must call it."""

    name: str


ToolChoice = Literal["none", "auto", "required"] | ForcedTool


@dataclass(frozen=True, slots=True)
class ChatRequest:
    messages: Sequence[ChatMessage]
    sampling: SamplingParams = field(default_factory=SamplingParams)
    response_format: JsonOutput | None = None
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice = "auto"
    parallel_tool_calls: bool = True
    prompt: str | tuple[int, ...] | None = None
    """A raw prompt the model continues as it is, without the chat template (`/v1/completions`):
    text, or token ids in the model's own vocabulary. `messages` is then empty."""

    @property
    def offers_tools(self) -> bool:
        """Whether the reply may call a tool."""
        return bool(self.tools) and self.tool_choice != "none"


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class TopLogprob:
    token: str
    bytes: bytes
    logprob: float


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One generated token with its log-probability and the most likely alternatives."""

    token: str
    bytes: bytes
    logprob: float
    top: tuple[TopLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a streamed tool call: `id` and `name` come first, `arguments` in fragments."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class ChatChunk:
    """A piece of a streamed reply. The last chunk has `finish_reason` and `usage` set."""

    text: str
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    tool_calls: tuple[ToolCallDelta, ...] = ()
    logprobs: tuple[TokenLogprob, ...] = ()
    """Of the tokens whose text this chunk carries."""
    tokens: int = 0
    """Tokens generated since the previous chunk, when the provider knows (0: it does not):
    what a reply cut short has used."""


@dataclass(frozen=True, slots=True)
class ChatResult:
    text: str
    finish_reason: FinishReason
    usage: Usage
    tool_calls: tuple[ToolCall, ...] = ()
    logprobs: tuple[TokenLogprob, ...] = ()


def request_prompt_tokens(
    request: ChatRequest, count_tokens: Callable[[Sequence[ChatMessage]], int]
) -> int:
    """The prompt tokens of `request` by a model's `count_tokens`: a raw prompt's text counts as
    one user message, its token ids as themselves."""
    if request.prompt is None:
        return count_tokens(request.messages)
    if isinstance(request.prompt, str):
        return count_tokens([ChatMessage("user", request.prompt)])
    return len(request.prompt)


@runtime_checkable
class ChatModel(Protocol):
    """A chat model. `complete` gives the whole reply at once (a remote model asks its server
    for one body), `stream` its pieces as they come; both apply the same request and reply
    processing. A `complete` cut short tells its caller nothing of what it used."""

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

    async def count_prompt_tokens(self, request: ChatRequest) -> int:
        """Tokens the prompt of `request` takes, its messages or its raw prompt. A model whose
        count is costly (a tokenizer, a chat template) counts on a worker thread; one whose
        count is an estimate counts at once, sparing the hop."""
        ...

    def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]: ...

    async def complete(self, request: ChatRequest) -> ChatResult: ...


@runtime_checkable
class EmbeddingModel(Protocol):
    @property
    def dimension(self) -> int: ...

    @property
    def max_input_tokens(self) -> int:
        """The most tokens of one text the model reads, special tokens included. `embed` reads
        only that much of a longer text: the rest does not count in its vector."""
        ...

    @property
    def ready(self) -> bool: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """The tokens of each text as the model reads it, special tokens included (an estimate
        for remote models). Counting stops past the window: a text longer than
        `max_input_tokens` counts `max_input_tokens + 1`, so a huge text costs no more to count
        than a long one."""
        ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


@runtime_checkable
class TokenSpanner(Protocol):
    """An embedding model that can show how it splits text: the character span of each token.

    Ingestion uses it to cut documents into chunks that fit the model's input exactly.
    """

    async def token_spans(self, text: str) -> list[tuple[int, int]]:
        """`(start, end)` character offsets into `text` of each token, in order."""
        ...


@runtime_checkable
class TokenIdEmbedder(Protocol):
    """An embedding model that also takes inputs as token ids of its own vocabulary (as vLLM
    does), without the special tokens it adds itself."""

    @property
    def vocabulary_size(self) -> int | None:
        """Valid ids are below it; `None` when only the model's server knows (remote)."""
        ...

    @property
    def special_tokens(self) -> int:
        """Tokens the model adds around each input (counted in its window and in usage)."""
        ...

    async def embed_token_ids(self, inputs: Sequence[Sequence[int]]) -> list[list[float]]: ...


async def collect(chunks: AsyncIterator[ChatChunk]) -> ChatResult:
    """Drain a stream into one result: how a provider whose reply comes as a stream implements
    `complete`."""
    parts: list[str] = []
    logprobs: list[TokenLogprob] = []
    calls = ToolCallAssembler()
    async for chunk in chunks:
        parts.append(chunk.text)
        logprobs.extend(chunk.logprobs)
        calls.add(chunk.tool_calls)
        if chunk.finish_reason is not None:
            usage = chunk.usage or Usage(prompt_tokens=0, completion_tokens=0)
            return ChatResult(
                text="".join(parts),
                finish_reason=chunk.finish_reason,
                usage=usage,
                tool_calls=calls.calls(),
                logprobs=tuple(logprobs),
            )
    raise ProviderError("the model stream ended without a finish reason")


class ToolCallAssembler:
    """Joins streamed tool-call deltas into whole calls, by their index."""

    def __init__(self) -> None:
        self._parts: dict[int, list[str]] = {}
        self._ids: dict[int, str] = {}
        self._names: dict[int, str] = {}

    def add(self, deltas: Sequence[ToolCallDelta]) -> None:
        for delta in deltas:
            self._parts.setdefault(delta.index, []).append(delta.arguments)
            if delta.id:
                self._ids[delta.index] = delta.id
            if delta.name:
                self._names[delta.index] = self._names.get(delta.index, "") + delta.name

    def calls(self) -> tuple[ToolCall, ...]:
        return tuple(
            ToolCall(
                id=self._ids.get(index, ""),
                name=self._names.get(index, ""),
                arguments="".join(self._parts[index]),
            )
            for index in sorted(self._parts)
        )


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


async def complete_all(model: ChatModel, requests: Sequence[ChatRequest]) -> list[ChatResult]:
    """`model`'s replies to `requests`, asked for together. One request (the common case) is
    asked in the caller's task: `gather` would run it in a task of its own."""
    if len(requests) == 1:
        return [await model.complete(requests[0])]
    return list(await asyncio.gather(*(model.complete(request) for request in requests)))


async def prime_all(streams: Sequence[AsyncIterator[T]]) -> list[AsyncIterator[T]]:
    """`prime` several streams together; if one fails, the others are closed and its error
    raised (the first, in order). One stream (the common case) is primed in the caller's task:
    `gather` would run it in a task of its own, a turn of the event loop more before the reply's
    first byte."""
    if len(streams) == 1:
        return [await prime(streams[0])]
    opened = await asyncio.gather(*(prime(stream) for stream in streams), return_exceptions=True)
    ready = [stream for stream in opened if not isinstance(stream, BaseException)]
    failure = next((error for error in opened if isinstance(error, BaseException)), None)
    if failure is not None:
        for stream in ready:
            await close_iterator(stream)
        raise failure
    return ready
