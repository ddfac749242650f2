"""`LocalChatModel`: the async face of the llama.cpp engine thread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing

from prometheus_client.metrics_core import Metric

from genai_service.inference.base import (
    ChatChunk,
    ChatMessage,
    ChatRequest,
    ChatResult,
    GenerationTimeout,
    ModelNotReady,
    PromptTooLong,
    collect,
    request_prompt_tokens,
)
from genai_service.inference.local.engine import EngineStats, LlamaEngine
from genai_service.inference.local.engine_metrics import engine_metric_families
from genai_service.inference.local.job import (
    EngineEvent,
    EventSink,
    Finished,
    GenerationJob,
    TextDelta,
)
from genai_service.inference.local.model_file import resolve_model_path
from genai_service.inference.local.prompt_tokenizer import PromptTokenizer
from genai_service.inference.local.reply_checker import ReplyChecker
from genai_service.inference.local.reply_plan import plan_reply
from genai_service.settings import LocalChatSettings


def _deliver_to(loop: asyncio.AbstractEventLoop, events: asyncio.Queue[EngineEvent]) -> EventSink:
    """A sink the engine thread calls; it hands each event to the loop without blocking either."""

    def deliver(event: EngineEvent) -> bool:
        try:
            loop.call_soon_threadsafe(events.put_nowait, event)
        except RuntimeError:  # the loop is closed: nobody will read this stream any more
            return False
        return True

    return deliver


class LocalChatModel:
    """A GGUF chat model run in-process by llama.cpp, with continuous batching."""

    def __init__(self, settings: LocalChatSettings) -> None:
        self._settings = settings
        self._engine: LlamaEngine | None = None
        self._tokenizer: PromptTokenizer | None = None

    @property
    def context_window(self) -> int:
        return self._engine.context_window if self._engine else self._settings.n_ctx

    @property
    def ready(self) -> bool:
        return self._engine is not None and self._engine.ready

    @property
    def stats(self) -> EngineStats:
        return self._require_engine().stats

    def metric_families(self) -> list[Metric]:
        """The engine's counters (`/metrics`); none while it is not loaded."""
        engine = self._engine
        return [] if engine is None else engine_metric_families(engine.stats)

    async def start(self) -> None:
        if self._engine is None:
            await asyncio.to_thread(self._load)

    def _load(self) -> None:
        model_path = resolve_model_path(self._settings.model_path)
        tokenizer = PromptTokenizer(model_path)
        engine = LlamaEngine(self._settings, model_path)
        try:
            engine.start()
        except BaseException:
            tokenizer.close()
            raise
        self._tokenizer, self._engine = tokenizer, engine

    async def close(self) -> None:
        engine, tokenizer = self._engine, self._tokenizer
        self._engine = self._tokenizer = None
        if engine is not None:
            await asyncio.to_thread(engine.close)
        if tokenizer is not None:
            tokenizer.close()

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return len(self._require_tokenizer().tokens_for(messages))

    async def count_prompt_tokens(self, request: ChatRequest) -> int:
        """On a worker thread: the chat template and the tokenizer take about 0.6 ms even for a
        short conversation, and milliseconds for a long one."""
        return await asyncio.to_thread(request_prompt_tokens, request, self.count_tokens)

    async def complete(self, request: ChatRequest) -> ChatResult:
        async with aclosing(self.stream(request)) as chunks:
            return await collect(chunks)

    async def stream(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        engine, tokenizer = self._require_engine(), self._require_tokenizer()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.request_timeout
        plan = await asyncio.to_thread(plan_reply, request, tokenizer)
        prompt = plan.prompt
        window = engine.context_window
        if len(prompt) >= window:
            raise PromptTooLong(
                f"the prompt takes {len(prompt)} tokens, but the context window of this model is "
                f"{window} tokens for prompt and reply together (so at most {window - 1} for the "
                "prompt)"
            )
        max_tokens = max(1, min(request.sampling.max_tokens, window - len(prompt)))
        events: asyncio.Queue[EngineEvent] = asyncio.Queue()
        job = GenerationJob(
            prompt, request.sampling, max_tokens, _deliver_to(loop, events), plan.grammar
        )
        engine.submit(job)
        reply = ReplyChecker(request, buffered=plan.tool_calling)
        ended = False
        try:
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        event = await events.get()
                except TimeoutError:
                    raise GenerationTimeout(
                        f"the reply took longer than {self._settings.request_timeout:g} s"
                    ) from None
                if isinstance(event, TextDelta):
                    yield reply.add(event.text, event.logprobs, event.tokens)
                elif isinstance(event, Finished):
                    ended = True
                    for chunk in reply.finish(event.reason, event.usage):
                        yield chunk
                    return
                else:
                    ended = True
                    raise event.error
        finally:
            if not ended:
                engine.cancel(job)

    def _require_engine(self) -> LlamaEngine:
        if self._engine is None:
            raise ModelNotReady("the local chat model is not loaded")
        return self._engine

    def _require_tokenizer(self) -> PromptTokenizer:
        if self._tokenizer is None:
            raise ModelNotReady("the local chat model is not loaded")
        return self._tokenizer
