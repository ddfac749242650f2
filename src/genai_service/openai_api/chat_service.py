"""`/v1/chat/completions`: run a request (`n` choices of it) and shape OpenAI's answer."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, MutableMapping, Sequence

from genai_service.gateway.caller import Caller
from genai_service.gateway.gateway import ModelGateway
from genai_service.inference.base import (
    ChatChunk,
    ChatModel,
    ChatRequest,
    ChatResult,
    FinishReason,
    TokenLogprob,
    ToolCallDelta,
    Usage,
    complete_all,
    prime_all,
)
from genai_service.kit.async_iterators import merged
from genai_service.kit.random_ids import random_hex
from genai_service.openai_api import chat_schemas as schemas
from genai_service.openai_api.chat_request import for_choice, to_chat_request


def completion_id() -> str:
    return f"chatcmpl-{random_hex()}"


def finish_reason(reason: FinishReason) -> schemas.FinishReason:
    # "cancelled" only happens when the server shuts down mid-generation; OpenAI has no such value.
    return "stop" if reason == "cancelled" else reason


def usage_of(usages: Sequence[Usage]) -> schemas.CompletionUsage:
    """The choices share one prompt: it is counted once, as OpenAI counts it."""
    prompt = max((usage.prompt_tokens for usage in usages), default=0)
    completion = sum(usage.completion_tokens for usage in usages)
    return schemas.CompletionUsage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


def logprobs_of(logprobs: Sequence[TokenLogprob]) -> schemas.ChoiceLogprobs:
    return schemas.ChoiceLogprobs(
        content=[
            schemas.TokenLogprobRead(
                token=entry.token,
                logprob=entry.logprob,
                bytes=list(entry.bytes),
                top_logprobs=[
                    schemas.TopLogprobRead(
                        token=top.token, logprob=top.logprob, bytes=list(top.bytes)
                    )
                    for top in entry.top
                ],
            )
            for entry in logprobs
        ]
    )


class ChatCompletionService:
    def __init__(
        self,
        gateway: ModelGateway,
        caller: Caller,
        headers: MutableMapping[str, str] | None = None,
    ) -> None:
        """`headers`: receives the rate-limit headers of the calls as they are admitted."""
        self.gateway = gateway
        self.caller = caller
        self.headers = headers

    def _model(self, body: schemas.ChatCompletionCreate) -> tuple[str, ChatModel]:
        model = self.gateway.chat(self.caller, "chat", body.model, headers=self.headers)
        return model.name, model

    async def complete(self, body: schemas.ChatCompletionCreate) -> schemas.ChatCompletion:
        name, model = self._model(body)
        request = to_chat_request(body)
        results = await complete_all(
            model, [for_choice(request, index) for index in range(body.n or 1)]
        )
        return schemas.ChatCompletion(
            id=completion_id(),
            created=int(time.time()),
            model=name,
            choices=[self._choice(index, result, request) for index, result in enumerate(results)],
            usage=usage_of([result.usage for result in results]),
        )

    @staticmethod
    def _choice(index: int, result: ChatResult, request: ChatRequest) -> schemas.Choice:
        calls = [
            schemas.ToolCallRead(
                id=call.id,
                function=schemas.FunctionCallRead(name=call.name, arguments=call.arguments),
            )
            for call in result.tool_calls
        ]
        return schemas.Choice(
            index=index,
            message=schemas.AssistantMessage(
                content=result.text if result.text or not calls else None,
                tool_calls=calls or None,
            ),
            finish_reason=finish_reason(result.finish_reason),
            logprobs=logprobs_of(result.logprobs)
            if request.sampling.logprobs is not None
            else None,
        )

    async def stream(
        self, body: schemas.ChatCompletionCreate
    ) -> AsyncIterator[list[schemas.ChatCompletionChunk]]:
        """Open every choice's stream (admission errors raise here), then yield OpenAI chunks,
        those of one piece of the reply together."""
        name, model = self._model(body)
        request = to_chat_request(body)
        streams = await prime_all(
            [model.stream(for_choice(request, i)) for i in range(body.n or 1)]
        )
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        writer = _ChunkWriter(name, request)
        return writer.chunks(streams, include_usage=include_usage)


class _ChunkWriter:
    """OpenAI's chunks for the merged streams of a request's choices."""

    def __init__(self, model: str, request: ChatRequest) -> None:
        self._id = completion_id()
        self._created = int(time.time())
        self._model = model
        self._logprobs = request.sampling.logprobs is not None

    def _chunk(
        self, choices: list[schemas.ChunkChoice], usage: schemas.CompletionUsage | None = None
    ) -> schemas.ChatCompletionChunk:
        return schemas.ChatCompletionChunk(
            id=self._id, created=self._created, model=self._model, choices=choices, usage=usage
        )

    def _piece(self, index: int, piece: ChatChunk) -> schemas.ChunkChoice:
        calls = [_tool_call_chunk(delta) for delta in piece.tool_calls] or None
        return schemas.ChunkChoice(
            index=index,
            delta=schemas.ChunkDelta(content=piece.text or None, tool_calls=calls),
            logprobs=logprobs_of(piece.logprobs) if self._logprobs and piece.logprobs else None,
        )

    async def chunks(
        self, streams: list[AsyncIterator[ChatChunk]], *, include_usage: bool
    ) -> AsyncIterator[list[schemas.ChatCompletionChunk]]:
        """The chunks of each piece of the reply, together: its content, then its choice's end
        if it is the last. The first piece's come after the chunk that gives every choice its
        role, in the same list, so that the reply's first words go out with it."""
        first = schemas.ChunkDelta(role="assistant", content="")
        ready = [
            self._chunk([schemas.ChunkChoice(index=i, delta=first) for i in range(len(streams))])
        ]
        usages: list[Usage] = []
        async with merged(streams) as pieces:
            async for index, piece in pieces:
                if piece.text or piece.tool_calls or piece.logprobs:
                    ready.append(self._chunk([self._piece(index, piece)]))
                if piece.finish_reason is not None:
                    usages.append(piece.usage or Usage(0, 0))
                    last = schemas.ChunkChoice(
                        index=index,
                        delta=schemas.ChunkDelta(),
                        finish_reason=finish_reason(piece.finish_reason),
                    )
                    done = len(usages) == len(streams)
                    usage = usage_of(usages) if done and not include_usage else None
                    ready.append(self._chunk([last], usage))
                if ready:
                    yield ready
                    ready = []
        if include_usage:
            ready.append(self._chunk([], usage_of(usages)))
        if ready:
            yield ready


def _tool_call_chunk(delta: ToolCallDelta) -> schemas.ToolCallChunk:
    return schemas.ToolCallChunk(
        index=delta.index,
        id=delta.id,
        type="function" if delta.id else None,
        function=schemas.FunctionCallDelta(name=delta.name, arguments=delta.arguments),
    )
