"""A chat model on a remote OpenAI-compatible server."""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from typing import Any

from openai.types import Completion
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from genai_service.inference.base import (
    ChatChunk,
    ChatMessage,
    ChatRequest,
    ChatResult,
    FinishReason,
    ProviderError,
    ToolCall,
    ToolCallAssembler,
    Usage,
    request_prompt_tokens,
)
from genai_service.inference.openai_compatible.endpoint import (
    CHARS_PER_TOKEN,
    OpenAICompatibleEndpoint,
    estimate_prompt_tokens,
    estimate_tokens,
)
from genai_service.inference.openai_compatible.replies import (
    Reply,
    UnreadableReply,
    read_reply,
    stream_error,
)
from genai_service.inference.openai_compatible.reply_pieces import (
    ToolCallHeaders,
    chat_logprobs,
    finish_reason_of,
    legacy_logprobs,
    piece_of,
)
from genai_service.inference.openai_compatible.request_body import chat_body, completion_body
from genai_service.inference.structured_output import (
    check_json_reply,
    check_tool_calls,
    check_tool_choice,
)
from genai_service.settings import ProviderSettings


class OpenAICompatibleChatModel:
    """A chat model on a remote OpenAI-compatible server: `complete` asks for the reply in one
    body, `stream` for a stream of chunks."""

    def __init__(self, name: str, provider: ProviderSettings) -> None:
        self._endpoint = OpenAICompatibleEndpoint(name, provider)
        self._context_window = provider.context_window

    @property
    def name(self) -> str:
        return self._endpoint.name

    @property
    def context_window(self) -> int:
        return self._context_window

    @property
    def ready(self) -> bool:
        return self._endpoint.ready

    async def start(self) -> None:
        await self._endpoint.start()

    async def close(self) -> None:
        await self._endpoint.close()

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return estimate_prompt_tokens(messages)

    async def count_prompt_tokens(self, request: ChatRequest) -> int:
        return request_prompt_tokens(request, self.count_tokens)

    async def complete(self, request: ChatRequest) -> ChatResult:
        """One upstream call that answers in one body, not a stream."""
        if request.prompt is not None:
            return await self._complete_prompt(request, _wire_prompt(request.prompt))
        body = chat_body(self._endpoint.remote_model, request, stream=False)
        completion = await self._post("/chat/completions", body, ChatCompletion)
        choice = next((c for c in completion.choices if c.index == 0), None)
        if choice is None or choice.finish_reason is None:
            raise self._unfinished(len(completion.choices))
        calls = tuple(
            ToolCall(id=call.id, name=call.function.name, arguments=call.function.arguments)
            for call in choice.message.tool_calls or ()
            if call.type == "function"
        )
        text = choice.message.content or ""
        finish = finish_reason_of(choice.finish_reason)
        self._check(request, finish, text, calls)
        usage = completion.usage
        return ChatResult(
            text=text,
            finish_reason=finish,
            usage=Usage(usage.prompt_tokens, usage.completion_tokens)
            if usage is not None
            else self._estimated_usage(request, len(text) + _arguments_length(calls)),
            tool_calls=calls,
            logprobs=chat_logprobs(choice.logprobs.content if choice.logprobs else None),
        )

    async def _complete_prompt(self, request: ChatRequest, prompt: str | list[int]) -> ChatResult:
        """A raw prompt, through the upstream's legacy `/v1/completions`."""
        body = completion_body(self._endpoint.remote_model, request, prompt, stream=False)
        completion = await self._post("/completions", body, Completion)
        choice = next((c for c in completion.choices if c.index == 0), None)
        if choice is None or choice.finish_reason is None:
            raise self._unfinished(len(completion.choices))
        usage = completion.usage
        return ChatResult(
            text=choice.text,
            finish_reason=finish_reason_of(choice.finish_reason),
            usage=Usage(usage.prompt_tokens, usage.completion_tokens)
            if usage is not None
            else _estimated_prompt_usage(prompt, len(choice.text)),
            logprobs=legacy_logprobs(choice.logprobs),
        )

    async def _post(self, path: str, body: dict[str, Any], kind: type[Reply]) -> Reply:
        return self._read(kind, await self._endpoint.post(path, body))

    async def _chunks(
        self, path: str, body: dict[str, Any], kind: type[Reply]
    ) -> AsyncGenerator[Reply, None]:
        """The chunks of a streamed reply; an error the server sends as an event of its stream
        is raised."""
        async with aclosing(self._endpoint.events(path, body)) as events:
            async for event, data in events:
                message = stream_error(data) if event == b"error" or b'"error"' in data else None
                if message is not None:
                    raise self._endpoint.errors.of_stream(message)
                yield self._read(kind, data)

    def _read(self, kind: type[Reply], data: bytes) -> Reply:
        try:
            return read_reply(kind, data)
        except UnreadableReply as exc:
            raise self._endpoint.errors.of_reply(str(exc)) from exc

    async def stream(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        if request.prompt is not None:
            prompt = _wire_prompt(request.prompt)
            async with aclosing(self._stream_completion(request, prompt)) as completion:
                async for chunk in completion:
                    yield chunk
            return
        body = chat_body(self._endpoint.remote_model, request, stream=True)
        finish: FinishReason | None = None
        usage: Usage | None = None
        reply_chars = 0
        text_parts: list[str] = []
        calls = ToolCallAssembler()
        headers = ToolCallHeaders()
        received = 0
        async with aclosing(self._chunks("/chat/completions", body, ChatCompletionChunk)) as chunks:
            async for reply in chunks:
                received += 1
                if reply.usage is not None:
                    usage = Usage(reply.usage.prompt_tokens, reply.usage.completion_tokens)
                for choice in reply.choices:
                    if choice.index != 0:
                        continue
                    piece = piece_of(choice, headers)
                    if piece is not None:
                        reply_chars += len(piece.text) + sum(
                            len(call.arguments) for call in piece.tool_calls
                        )
                        text_parts.append(piece.text)
                        calls.add(piece.tool_calls)
                        yield piece
                    if choice.finish_reason is not None:
                        finish = finish_reason_of(choice.finish_reason)
        if finish is None:
            raise self._unfinished(received)
        self._check(request, finish, "".join(text_parts), calls.calls())
        if usage is None:  # a server that ignores stream_options
            usage = self._estimated_usage(request, reply_chars)
        yield ChatChunk(text="", finish_reason=finish, usage=usage)

    @staticmethod
    def _check(
        request: ChatRequest, finish: FinishReason, text: str, calls: tuple[ToolCall, ...]
    ) -> None:
        """The reply keeps the request's structured-output contract, or a `ProviderError`."""
        if finish == "stop" and request.response_format is not None:
            check_json_reply(text, request.response_format)
        if finish == "tool_calls":
            check_tool_calls(calls, request.tools)
        if request.tools:
            check_tool_choice(calls, request.tool_choice)

    def _estimated_usage(self, request: ChatRequest, reply_chars: int) -> Usage:
        return Usage(
            prompt_tokens=self.count_tokens(request.messages),
            completion_tokens=math.ceil(reply_chars / CHARS_PER_TOKEN),
        )

    async def _stream_completion(
        self, request: ChatRequest, prompt: str | list[int]
    ) -> AsyncGenerator[ChatChunk, None]:
        """A raw prompt, through the upstream's legacy `/v1/completions`."""
        body = completion_body(self._endpoint.remote_model, request, prompt, stream=True)
        finish: FinishReason | None = None
        usage: Usage | None = None
        reply_chars = 0
        received = 0
        async with aclosing(self._chunks("/completions", body, Completion)) as chunks:
            async for chunk in chunks:
                received += 1
                if chunk.usage is not None:
                    usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                for choice in chunk.choices:
                    if choice.index != 0:
                        continue
                    logprobs = legacy_logprobs(choice.logprobs)
                    if choice.text or logprobs:
                        reply_chars += len(choice.text)
                        yield ChatChunk(text=choice.text, logprobs=logprobs)
                    if choice.finish_reason is not None:
                        finish = finish_reason_of(choice.finish_reason)
        if finish is None:
            raise self._unfinished(received)
        if usage is None:  # llama.cpp's server, for one, ignores stream_options
            usage = _estimated_prompt_usage(prompt, reply_chars)
        yield ChatChunk(text="", finish_reason=finish, usage=usage)

    def _unfinished(self, chunks_received: int) -> ProviderError:
        if chunks_received == 0:
            # llama.cpp's server ends the stream of a request it refuses (a prompt longer than
            # its context) so, having answered 200 already.
            return ProviderError(
                f"model {self.name!r}: the provider answered without a reply (a server "
                "may do so for a request it refuses, such as a prompt longer than its context)"
            )
        return ProviderError(f"model {self.name!r}: the reply ended without a finish reason")


def _wire_prompt(prompt: str | tuple[int, ...]) -> str | list[int]:
    return prompt if isinstance(prompt, str) else list(prompt)


def _estimated_prompt_usage(prompt: str | list[int], reply_chars: int) -> Usage:
    return Usage(
        prompt_tokens=len(prompt) if isinstance(prompt, list) else estimate_tokens(prompt),
        completion_tokens=math.ceil(reply_chars / CHARS_PER_TOKEN),
    )


def _arguments_length(calls: Sequence[ToolCall]) -> int:
    return sum(len(call.arguments) for call in calls)
