"""A model wrapped for one caller and purpose: guards admit each call, and settle it once it ends.

The wrappers keep the model protocols, so the code that calls a model does not change: it gets
the wrapper from the gateway instead of the registry. A call is admitted before the model runs
(a refusal is raised before anything is sent) and settled in a `finally` — completed, failed,
cancelled, or its client gone (the stream is closed) — with what it really used, as far as the
call can tell (`AdmittedChatCall.complete` says what a reply in one body cut short is charged).
Settling runs in a task of its own, so a cancelled request cannot cut it short.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncGenerator, MutableMapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass

from loguru import logger

from genai_service.gateway.caller import Caller, Purpose
from genai_service.gateway.guards import (
    Admission,
    CallOutcome,
    CallStatus,
    Guard,
    ModelCall,
    ModelKind,
)
from genai_service.gateway.metrics import ModelCallMetrics
from genai_service.inference.base import (
    ChatChunk,
    ChatMessage,
    ChatModel,
    ChatRequest,
    ChatResult,
)
from genai_service.kit.async_iterators import close_iterator
from genai_service.kit.errors import AppError

CHARS_PER_TOKEN = 4
"""For a reply cut short by a provider that does not count its tokens."""


@dataclass(frozen=True, slots=True)
class Guarding:
    """What every call passes: the guards, in order, and the metrics that count it."""

    guards: Sequence[Guard]
    metrics: ModelCallMetrics


@dataclass(frozen=True, slots=True)
class CallContext:
    """What the calls through one wrapped model share: who calls and why, the guards that admit
    them, and where the guards' response headers go (`None`: nowhere)."""

    caller: Caller
    purpose: Purpose
    guarding: Guarding
    headers: MutableMapping[str, str] | None = None

    def new_call(self) -> GuardedCall:
        return GuardedCall(self.guarding, self.headers)

    def model_call(
        self, model: str, kind: ModelKind, prompt_tokens: int, max_completion_tokens: int = 0
    ) -> ModelCall:
        return ModelCall(
            caller=self.caller,
            purpose=self.purpose,
            model=model,
            kind=kind,
            prompt_tokens=prompt_tokens,
            max_completion_tokens=max_completion_tokens,
        )


class GuardedCall:
    """One model call between its admission and its settlement."""

    def __init__(self, guarding: Guarding, headers: MutableMapping[str, str] | None) -> None:
        self._guarding = guarding
        self._headers = headers
        self._admissions: list[Admission] = []
        self._call: ModelCall | None = None
        self._started = time.monotonic()

    async def admit(self, call: ModelCall) -> None:
        """Every guard admits the call, or the ones that did are released and the refusal
        raised."""
        try:
            for guard in self._guarding.guards:
                admission = await guard.admit(call)
                self._admissions.append(admission)
                if self._headers is not None:
                    self._headers.update(admission.headers)
        except BaseException as refusal:
            if isinstance(refusal, AppError):
                self._guarding.metrics.refused(refusal.slug)
            await self._settle_admissions(CallOutcome("cancelled", 0, 0, 0))
            raise
        self._call = call

    async def settle(self, status: CallStatus, prompt_tokens: int, completion_tokens: int) -> None:
        """Count what the admitted call used, once; a call never admitted has nothing to settle."""
        call, self._call = self._call, None
        if call is None:
            return
        outcome = CallOutcome(
            status=status,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            duration_ms=round((time.monotonic() - self._started) * 1000),
        )
        self._guarding.metrics.settled(call, outcome)
        await self._settle_admissions(outcome)

    async def _settle_admissions(self, outcome: CallOutcome) -> None:
        admissions, self._admissions = self._admissions, []
        if all(admission.settles_in_memory for admission in admissions):
            await _settle_all(admissions, outcome)
        else:
            # In a task of its own, so a cancelled request cannot cut the settlement short.
            settling = asyncio.ensure_future(_settle_all(admissions, outcome))
            await asyncio.shield(settling)


async def _settle_all(admissions: Sequence[Admission], outcome: CallOutcome) -> None:
    for admission in reversed(admissions):
        try:
            await admission.settle(outcome)
        except Exception:  # a guard that fails to settle must not stop the others
            logger.exception("a model call could not be settled")


class AdmittedChatCall:
    """A chat call its guards admitted: streamed once, or released unstreamed."""

    def __init__(
        self, model: ChatModel, request: ChatRequest, guarded: GuardedCall, prompt_tokens: int
    ) -> None:
        self._model = model
        self._request = request
        self._guarded = guarded
        self._prompt_tokens = prompt_tokens

    async def stream(self) -> AsyncGenerator[ChatChunk, None]:
        """The model's reply; settled in a `finally` with what it used."""
        prompt_tokens = self._prompt_tokens
        status: CallStatus = "cancelled"
        generated = reply_chars = 0
        chunks = self._model.stream(self._request)
        try:
            async for chunk in chunks:
                generated += chunk.tokens
                reply_chars += len(chunk.text)
                if chunk.usage is not None:
                    prompt_tokens = chunk.usage.prompt_tokens
                    generated = chunk.usage.completion_tokens
                if chunk.finish_reason is not None:
                    status = "cancelled" if chunk.finish_reason == "cancelled" else "completed"
                yield chunk
        except Exception:
            status = "failed"
            raise
        finally:
            # Closing the provider's stream first frees a local engine's slot at once.
            await close_iterator(chunks)
            if status != "completed" and not generated:
                generated = math.ceil(reply_chars / CHARS_PER_TOKEN)
            await self._guarded.settle(status, prompt_tokens, generated)

    async def complete(self) -> ChatResult:
        """The model's whole reply at once; settled with its usage. A call cut short tells
        nothing of what it used: one that failed is charged its prompt, as a failed stream
        that sent nothing is; one cancelled (the server stopping) is charged its whole
        reservation, since the model may have generated up to `max_tokens` meanwhile."""
        status: CallStatus = "cancelled"
        prompt_tokens = self._prompt_tokens
        generated = self._request.sampling.max_tokens
        try:
            result = await self._model.complete(self._request)
        except Exception:
            status, generated = "failed", 0
            raise
        else:
            status = "cancelled" if result.finish_reason == "cancelled" else "completed"
            prompt_tokens, generated = result.usage.prompt_tokens, result.usage.completion_tokens
            return result
        finally:
            await self._guarded.settle(status, prompt_tokens, generated)

    async def release(self) -> None:
        """Settle the call as cancelled with nothing used, unless its stream settled it."""
        await self._guarded.settle("cancelled", 0, 0)


class GuardedChatModel:
    def __init__(self, model: ChatModel, *, name: str, context: CallContext) -> None:
        self._model = model
        self.name = name
        self._context = context

    @property
    def context_window(self) -> int:
        return self._model.context_window

    @property
    def ready(self) -> bool:
        return self._model.ready

    async def start(self) -> None:
        await self._model.start()

    async def close(self) -> None:
        await self._model.close()

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return self._model.count_tokens(messages)

    async def count_prompt_tokens(self, request: ChatRequest) -> int:
        return await self._model.count_prompt_tokens(request)

    async def complete(self, request: ChatRequest) -> ChatResult:
        call = await self.admit(request)
        return await call.complete()

    async def stream(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        call = await self.admit(request)
        try:
            async with aclosing(call.stream()) as chunks:
                async for chunk in chunks:
                    yield chunk
        finally:
            await call.release()

    async def admit(self, request: ChatRequest) -> AdmittedChatCall:
        """Admit a call of `request` now, to stream it later: for work that must know the call
        may run before it commits to anything (a turn stores its question only then). The call
        is settled when its stream ends, or by `release` when it is never streamed."""
        guarded = self._context.new_call()
        prompt_tokens = await self._model.count_prompt_tokens(request)
        await guarded.admit(
            self._context.model_call(self.name, "chat", prompt_tokens, request.sampling.max_tokens)
        )
        return AdmittedChatCall(self._model, request, guarded, prompt_tokens)
