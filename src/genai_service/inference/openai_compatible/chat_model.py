"""A chat model on a remote OpenAI-compatible server; `complete` drains `stream`."""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing

import openai

from genai_service.inference.base import (
    ChatChunk,
    ChatMessage,
    ChatRequest,
    ChatResult,
    FinishReason,
    ProviderError,
    ToolCallAssembler,
    Usage,
    collect,
    request_prompt_tokens,
)
from genai_service.inference.openai_compatible.endpoint import (
    CHARS_PER_TOKEN,
    OpenAICompatibleEndpoint,
    estimate_prompt_tokens,
    estimate_tokens,
)
from genai_service.inference.openai_compatible.reply_pieces import (
    ToolCallHeaders,
    finish_reason_of,
    legacy_logprobs,
    piece_of,
)
from genai_service.inference.openai_compatible.request_body import message_param, request_options
from genai_service.inference.structured_output import (
    check_json_reply,
    check_tool_calls,
    check_tool_choice,
)
from genai_service.settings import ProviderSettings


class OpenAICompatibleChatModel:
    """A chat model on a remote OpenAI-compatible server; `complete` drains `stream`."""

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
        async with aclosing(self.stream(request)) as chunks:
            return await collect(chunks)

    async def stream(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        if request.prompt is not None:
            async with aclosing(self._stream_completion(request, request.prompt)) as completion:
                async for chunk in completion:
                    yield chunk
            return
        client = self._endpoint.client()
        try:
            chunks = await client.chat.completions.create(
                model=self._endpoint.remote_model,
                messages=[message_param(m) for m in request.messages],
                stream=True,
                stream_options={"include_usage": True},
                **request_options(request),
            )
        except openai.OpenAIError as exc:
            raise self._endpoint.translate(exc) from exc
        finish: FinishReason | None = None
        usage: Usage | None = None
        reply_chars = 0
        text_parts: list[str] = []
        calls = ToolCallAssembler()
        headers = ToolCallHeaders()
        received = 0
        async with chunks:
            try:
                async for chunk in chunks:
                    received += 1
                    if chunk.usage is not None:
                        usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                    for choice in chunk.choices:
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
            except openai.OpenAIError as exc:
                raise self._endpoint.translate(exc, during_reply=True) from exc
        if finish is None:
            raise self._unfinished(received)
        if finish == "stop" and request.response_format is not None:
            check_json_reply("".join(text_parts), request.response_format)
        if finish == "tool_calls":
            check_tool_calls(calls.calls(), request.tools)
        if request.tools:
            check_tool_choice(calls.calls(), request.tool_choice)
        if usage is None:  # a server that ignores stream_options
            usage = Usage(
                prompt_tokens=self.count_tokens(request.messages),
                completion_tokens=math.ceil(reply_chars / CHARS_PER_TOKEN),
            )
        yield ChatChunk(text="", finish_reason=finish, usage=usage)

    async def _stream_completion(
        self, request: ChatRequest, raw_prompt: str | tuple[int, ...]
    ) -> AsyncGenerator[ChatChunk, None]:
        """A raw prompt, through the upstream's legacy `/v1/completions`."""
        options = request_options(request)
        if request.sampling.logprobs is not None:
            options.pop("top_logprobs", None)
            options["logprobs"] = request.sampling.logprobs
        prompt = raw_prompt if isinstance(raw_prompt, str) else list(raw_prompt)
        try:
            chunks = await self._endpoint.client().completions.create(
                model=self._endpoint.remote_model,
                prompt=prompt,
                stream=True,
                stream_options={"include_usage": True},
                **options,
            )
        except openai.OpenAIError as exc:
            raise self._endpoint.translate(exc) from exc
        finish: FinishReason | None = None
        usage: Usage | None = None
        reply_chars = 0
        received = 0
        async with chunks:
            try:
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
            except openai.OpenAIError as exc:
                raise self._endpoint.translate(exc, during_reply=True) from exc
        if finish is None:
            raise self._unfinished(received)
        if usage is None:  # llama.cpp's server, for one, ignores stream_options
            usage = Usage(
                prompt_tokens=len(prompt) if isinstance(prompt, list) else estimate_tokens(prompt),
                completion_tokens=math.ceil(reply_chars / CHARS_PER_TOKEN),
            )
        yield ChatChunk(text="", finish_reason=finish, usage=usage)

    def _unfinished(self, chunks_received: int) -> ProviderError:
        if chunks_received == 0:
            # llama.cpp's server ends the stream of a request it refuses (a prompt longer than
            # its context) so, having answered 200 already.
            return ProviderError(
                f"model {self.name!r}: the provider ended its stream without a reply (a server "
                "may do so for a request it refuses, such as a prompt longer than its context)"
            )
        return ProviderError(f"model {self.name!r}: the stream ended without a finish reason")
