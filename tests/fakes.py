"""Deterministic stand-ins for the real models, behind the same protocols.

`ScriptedChatModel` answers `"You said: <last user message>"` (or a fixed `reply`), streamed one
word per chunk; a word is a token. `max_tokens` cuts the reply (finish reason "length"), a stop
sequence cuts it before the stop text (finish reason "stop"). A request whose `tool_choice` is
"required" or names a function gets a call of that function (or the first tool) with
`call_arguments`, streamed in two fragments. Like a real model it is not ready before `start()`
nor after `close()`.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import time
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing

from genai_service.inference.base import (
    ChatChunk,
    ChatMessage,
    ChatRequest,
    ChatResult,
    FinishReason,
    ForcedTool,
    ModelNotReady,
    ModelProcessStopped,
    PromptTooLong,
    ToolCallDelta,
    Usage,
    collect,
    request_prompt_tokens,
)
from genai_service.kit.errors import AppError


class ScriptedChatModel:
    def __init__(
        self, *, reply: str | None = None, context_window: int = 4096, chunk_delay: float = 0.0
    ) -> None:
        self.reply = reply
        self.chunk_delay = chunk_delay
        """Seconds slept before each chunk: a slow model, for cancellation and disconnect tests."""
        self._context_window = context_window
        self._ready = False
        self.start_calls = 0
        self.requests: list[ChatRequest] = []
        """Every request that reached the model, in order."""
        self.chunks_sent = 0
        """Text chunks yielded so far, over all requests."""
        self.call_arguments = "{}"
        """The arguments of the calls it makes when a request requires one."""

    @property
    def context_window(self) -> int:
        return self._context_window

    @property
    def ready(self) -> bool:
        return self._ready

    async def start(self) -> None:
        self.start_calls += 1
        self._ready = True

    async def close(self) -> None:
        self._ready = False

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return sum(len(message.content.split()) for message in messages)

    async def count_prompt_tokens(self, request: ChatRequest) -> int:
        if isinstance(request.prompt, str):
            return len(request.prompt.split())
        return request_prompt_tokens(request, self.count_tokens)

    def reply_to(self, request: ChatRequest) -> str:
        """The whole reply before `max_tokens` and stop sequences apply."""
        if self.reply is not None:
            return self.reply
        if isinstance(request.prompt, str):
            return f"You said: {request.prompt}"
        if request.prompt is not None:
            return f"You sent {len(request.prompt)} tokens"
        users = [m.content for m in request.messages if m.role == "user"]
        return f"You said: {users[-1] if users else ''}".strip()

    async def complete(self, request: ChatRequest) -> ChatResult:
        async with aclosing(self.stream(request)) as chunks:
            return await collect(chunks)

    async def stream(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        if not self._ready:
            raise ModelNotReady("the scripted model is not started")
        prompt_tokens = self.count_tokens(request.messages)
        if request.prompt is not None:
            prompt = request.prompt
            prompt_tokens = len(prompt.split()) if isinstance(prompt, str) else len(prompt)
        if prompt_tokens >= self._context_window:
            raise PromptTooLong(f"the prompt takes {prompt_tokens} of {self._context_window}")
        self.requests.append(request)
        if request.offers_tools and request.tool_choice != "auto":
            for chunk in self._call(request, prompt_tokens):
                yield chunk
            return
        text = self.reply_to(request)
        for stop in request.sampling.stop:
            if stop in text:
                text = text[: text.index(stop)]
        words = text.split()
        finish: FinishReason = "length" if len(words) > request.sampling.max_tokens else "stop"
        words = words[: request.sampling.max_tokens]
        for index, word in enumerate(words):
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
            self.chunks_sent += 1
            yield ChatChunk(text=word if index == 0 else f" {word}", tokens=1)
        usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=len(words))
        yield ChatChunk(text="", finish_reason=finish, usage=usage)

    def _call(self, request: ChatRequest, prompt_tokens: int) -> list[ChatChunk]:
        forced = request.tool_choice
        name = forced.name if isinstance(forced, ForcedTool) else request.tools[0].name
        arguments, half = self.call_arguments, len(self.call_arguments) // 2
        call_id = f"call_{len(self.requests)}"
        return [
            ChatChunk("", tool_calls=(ToolCallDelta(0, call_id, name, arguments[:half]),)),
            ChatChunk("", tool_calls=(ToolCallDelta(0, arguments=arguments[half:]),)),
            ChatChunk("", finish_reason="tool_calls", usage=Usage(prompt_tokens, 1)),
        ]


class FailingChatModel(ScriptedChatModel):
    """Streams `after_chunks` chunks of its reply, then raises `error`."""

    def __init__(self, error: AppError, *, after_chunks: int = 0) -> None:
        super().__init__(reply="partial reply from a failing model")
        self.error = error
        self.after_chunks = after_chunks

    async def stream(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        sent = 0
        async with aclosing(super().stream(request)) as chunks:
            async for chunk in chunks:
                if sent == self.after_chunks:
                    break
                sent += 1
                yield chunk
        raise self.error


class FakeEmbeddingModel:
    """Bag-of-words hashing vectors: deterministic, L2-normalised, and texts sharing words are
    closer than texts that share none, so retrieval tests rank sensibly.

    Its tokens are words and punctuation marks, plus two special tokens per text, as a BERT
    tokenizer adds; it reads `max_input_tokens` of them.
    """

    SPECIAL_TOKENS = 2

    def __init__(self, dimension: int = 64, *, max_input_tokens: int = 256) -> None:
        self._dimension = dimension
        self._max_input_tokens = max_input_tokens
        self._ready = False
        self.calls: list[list[str]] = []

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_input_tokens(self) -> int:
        return self._max_input_tokens

    async def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not self._ready:
            raise ModelNotReady("the fake embedding model is not started")
        cap = self._max_input_tokens + 1
        return [min(len(self.tokens(text)) + self.SPECIAL_TOKENS, cap) for text in texts]

    @staticmethod
    def tokens(text: str) -> list[str]:
        return re.findall(r"\w+|[^\w\s]", text)

    @property
    def ready(self) -> bool:
        return self._ready

    async def start(self) -> None:
        self._ready = True

    async def close(self) -> None:
        self._ready = False

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not self._ready:
            raise ModelNotReady("the fake embedding model is not started")
        self.calls.append(list(texts))
        return [self.vector(text) for text in texts]

    def vector(self, text: str) -> list[float]:
        """Of the tokens the model reads: the first `max_input_tokens` (specials included)."""
        read = self.tokens(text)[: self._max_input_tokens - self.SPECIAL_TOKENS]
        vector = [0.0] * self._dimension
        for word in re.findall(r"\w+", " ".join(read).lower()) or [text]:
            digest = hashlib.sha256(word.encode()).digest()
            index = int.from_bytes(digest[:4], "big") % self._dimension
            vector[index] += 1.0
        norm = math.sqrt(sum(x * x for x in vector)) or 1.0
        return [x / norm for x in vector]


class TokenizingEmbeddingModel(FakeEmbeddingModel):
    """The fake embedding model exposing a tokenizer (words and marks), as the local model
    does, with the hostile cases ingestion must survive:

    - `hold`: while set to an unset event, tokenizing waits for it (a long tokenization);
      `tokenizing` is set once a call waits, `stopped_at` records when a waiting call was
      cancelled (`time.monotonic()`).
    - `crash_on`: a text containing it fails as if the model's process had died on it.
    - `embed_delay`: seconds each `embed` call takes (a slow model).
    """

    def __init__(self, *, crash_on: str | None = None, embed_delay: float = 0.0) -> None:
        super().__init__()
        self.crash_on = crash_on
        self.embed_delay = embed_delay
        self.hold: asyncio.Event | None = None
        self.tokenizing = asyncio.Event()
        self.stopped_at: float | None = None
        self.tokenized: list[str] = []
        """Every text tokenized, in order."""

    async def token_spans(self, text: str) -> list[tuple[int, int]]:
        self.tokenized.append(text)
        if self.crash_on is not None and self.crash_on in text:
            raise ModelProcessStopped("the embedding model's process stopped")
        if self.hold is not None:
            self.tokenizing.set()
            try:
                await self.hold.wait()
            except asyncio.CancelledError:
                self.stopped_at = time.monotonic()
                raise
        return [match.span() for match in re.finditer(r"\w+|[^\w\s]", text)]

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if self.embed_delay:
            await asyncio.sleep(self.embed_delay)
        return await super().embed(texts)
