"""Translate OpenAI-shaped requests to our chat/embedding protocols and back."""

from __future__ import annotations

import base64
import struct
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Literal

from genai_service.inference.base import (
    ChatChunk,
    ChatMessage,
    ChatRequest,
    EmbeddingModel,
    FinishReason,
    Role,
    SamplingParams,
    Usage,
    prime,
)
from genai_service.inference.registry import ModelRegistry
from genai_service.openai_api.errors import EmbeddingInputTooLong, EmbeddingRequestTooLarge
from genai_service.openai_api.schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionCreate,
    Choice,
    ChunkChoice,
    ChunkDelta,
    CompletionUsage,
    Embedding,
    EmbeddingCreate,
    EmbeddingList,
    EmbeddingUsage,
    ModelCard,
    ModelList,
)

_ROLES: dict[str, Role] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
}


def to_chat_request(body: ChatCompletionCreate) -> ChatRequest:
    defaults = SamplingParams()
    return ChatRequest(
        messages=[ChatMessage(role=_ROLES[m.role], content=m.text) for m in body.messages],
        sampling=SamplingParams(
            max_tokens=body.max_completion_tokens or body.max_tokens or defaults.max_tokens,
            temperature=body.temperature,
            top_p=body.top_p,
            stop=body.stop_sequences,
            seed=body.seed,
        ),
    )


def _finish(reason: FinishReason) -> Literal["stop", "length"]:
    # "cancelled" only happens when the server shuts down mid-generation; OpenAI has no such value.
    return "length" if reason == "length" else "stop"


def _usage(usage: Usage) -> CompletionUsage:
    return CompletionUsage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


def _encode_base64(vector: Sequence[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


class OpenAIService:
    def __init__(self, models: ModelRegistry, *, max_embedding_request_tokens: int) -> None:
        self.models = models
        self.max_embedding_request_tokens = max_embedding_request_tokens

    def _model_name(self, requested: str | None, *, chat: bool) -> str:
        if requested:
            return requested
        return self.models.default_chat_name if chat else self.models.default_embedding_name

    async def complete(self, body: ChatCompletionCreate) -> ChatCompletion:
        name = self._model_name(body.model, chat=True)
        result = await self.models.chat(name).complete(to_chat_request(body))
        return ChatCompletion(
            id=f"chatcmpl-{uuid.uuid4().hex}",
            created=int(time.time()),
            model=name,
            choices=[
                Choice(
                    message=AssistantMessage(content=result.text),
                    finish_reason=_finish(result.finish_reason),
                )
            ],
            usage=_usage(result.usage),
        )

    async def stream(self, body: ChatCompletionCreate) -> AsyncIterator[ChatCompletionChunk]:
        """Open the stream (admission errors raise here), then yield OpenAI chunks."""
        name = self._model_name(body.model, chat=True)
        chunks = await prime(self.models.chat(name).stream(to_chat_request(body)))
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        return self._chunks(chunks, name=name, include_usage=include_usage)

    async def _chunks(
        self, chunks: AsyncIterator[ChatChunk], *, name: str, include_usage: bool
    ) -> AsyncIterator[ChatCompletionChunk]:
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())

        def chunk(
            delta: ChunkDelta, finish: Literal["stop", "length"] | None = None
        ) -> ChatCompletionChunk:
            choice = ChunkChoice(delta=delta, finish_reason=finish)
            return ChatCompletionChunk(
                id=completion_id, created=created, model=name, choices=[choice]
            )

        yield chunk(ChunkDelta(role="assistant", content=""))
        async for piece in chunks:
            if piece.text:
                yield chunk(ChunkDelta(content=piece.text))
            if piece.finish_reason is None:
                continue
            last = chunk(ChunkDelta(), _finish(piece.finish_reason))
            usage = _usage(piece.usage) if piece.usage else None
            if not include_usage:
                last.usage = usage
            yield last
            if include_usage:
                yield ChatCompletionChunk(
                    id=completion_id, created=created, model=name, choices=[], usage=usage
                )
            return

    async def embed(self, body: EmbeddingCreate) -> EmbeddingList:
        name = self._model_name(body.model, chat=False)
        model = self.models.embedding(name)
        tokens = await self._embedding_tokens(model, name, body)
        vectors = await model.embed(body.texts)
        encode = _encode_base64 if body.encoding_format == "base64" else list
        return EmbeddingList(
            data=[Embedding(index=i, embedding=encode(v)) for i, v in enumerate(vectors)],
            model=name,
            usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens),
        )

    async def _embedding_tokens(
        self, model: EmbeddingModel, name: str, body: EmbeddingCreate
    ) -> int:
        """The tokens the model will read of the inputs, counted before any is embedded: `400`
        for an input longer than the model reads (unless `truncate`) and for a request over the
        token limit."""
        window = model.max_input_tokens
        counts = await model.count_tokens(body.texts)
        too_long = [index for index, count in enumerate(counts) if count > window]
        if too_long and not body.truncate:
            which = "The input" if isinstance(body.input, str) else f"Input {too_long[0]}"
            others = f" (and {len(too_long) - 1} more)" if len(too_long) > 1 else ""
            raise EmbeddingInputTooLong(
                f"{which}{others} is longer than the {window} tokens model {name!r} reads "
                '(special tokens included). Shorten it, or send "truncate": true to embed the '
                f"first {window} tokens of each input.",
                param="input",
            )
        total = sum(min(count, window) for count in counts)
        if total > self.max_embedding_request_tokens:
            raise EmbeddingRequestTooLarge(
                f"The inputs take {total} tokens; a request may embed at most "
                f"{self.max_embedding_request_tokens}. Send them in smaller requests.",
                param="input",
            )
        return total

    def list_models(self) -> ModelList:
        created = int(time.time())
        names = [*self.models.chat_names(), *self.models.embedding_names()]
        return ModelList(data=[ModelCard(id=name, created=created) for name in names])
