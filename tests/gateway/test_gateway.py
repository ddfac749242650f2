"""The model gateway: every call is admitted by each guard before the model runs and settled
exactly once when it ends — completed, failed, cancelled, or closed by a client that left —
with what it really used; refusals release what earlier guards held; metrics count it all."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from genai_service.gateway.caller import Caller
from genai_service.gateway.gateway import ModelGateway
from genai_service.gateway.guards import CallOutcome, ModelCall
from genai_service.gateway.metrics import ModelCallMetrics
from genai_service.inference.base import ChatChunk, ChatMessage, ChatRequest, SamplingParams
from genai_service.inference.registry import ModelRegistry
from genai_service.kit.errors import BadGateway, TooManyRequests
from tests.fakes import FailingChatModel, FakeEmbeddingModel, ScriptedChatModel
from tests.polling import wait_until

CALLER = Caller(uuid.uuid4(), uuid.uuid4())
REPLY = "one two three four five six"


@dataclass
class RecordingAdmission:
    guard: RecordingGuard
    call: ModelCall

    @property
    def headers(self) -> Mapping[str, str]:
        return {f"x-{self.guard.name}": "admitted"}

    @property
    def settles_in_memory(self) -> bool:
        return self.guard.in_memory

    async def settle(self, outcome: CallOutcome) -> None:
        self.guard.settled_in.append(asyncio.current_task())
        if self.guard.settle_seconds:
            await asyncio.sleep(self.guard.settle_seconds)
        self.guard.settled.append((self.call, outcome))


@dataclass
class RecordingGuard:
    name: str
    refuse: bool = False
    in_memory: bool = False
    settle_seconds: float = 0.0
    """How long settling waits (on a database, say)."""
    admitted: list[ModelCall] = field(default_factory=list)
    settled: list[tuple[ModelCall, CallOutcome]] = field(default_factory=list)
    settled_in: list[asyncio.Task[Any] | None] = field(default_factory=list)
    """The task each settlement ran in."""

    async def admit(self, call: ModelCall) -> RecordingAdmission:
        if self.refuse:
            raise TooManyRequests("over the limit", retry_after=1)
        self.admitted.append(call)
        return RecordingAdmission(self, call)


def sample(registry: CollectorRegistry, name: str, labels: dict[str, str]) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def drain(chunks: AsyncIterator[ChatChunk], *, into: list[str]) -> None:
    async for chunk in chunks:
        into.append(chunk.text)


def request(max_tokens: int = 100) -> ChatRequest:
    return ChatRequest(
        messages=[ChatMessage("user", "say six words")],
        sampling=SamplingParams(max_tokens=max_tokens),
    )


@pytest.fixture
async def models() -> ModelRegistry:
    registry = ModelRegistry(
        chat={
            "scripted": ScriptedChatModel(reply=REPLY),
            "slow": ScriptedChatModel(reply=REPLY, chunk_delay=0.05),
            "failing": FailingChatModel(BadGateway("the upstream closed"), after_chunks=2),
        },
        embeddings={"embedder": FakeEmbeddingModel()},
    )
    await registry.start()
    return registry


async def test_a_completed_call_is_admitted_with_its_most_and_settled_with_its_use(
    models: ModelRegistry,
) -> None:
    first, second = RecordingGuard("first"), RecordingGuard("second")
    metrics = ModelCallMetrics()
    headers: dict[str, str] = {}
    gateway = ModelGateway(models, [first, second], metrics)
    model = gateway.chat(CALLER, "chat", "scripted", headers=headers)
    result = await model.complete(request(max_tokens=100))
    assert result.text == REPLY
    [call] = first.admitted
    assert (call.caller, call.purpose, call.model, call.kind) == (
        CALLER,
        "chat",
        "scripted",
        "chat",
    )
    assert (call.prompt_tokens, call.max_completion_tokens, call.most_tokens) == (3, 100, 103)
    assert headers == {"x-first": "admitted", "x-second": "admitted"}
    for guard in (first, second):
        [(_, outcome)] = guard.settled
        assert (outcome.status, outcome.prompt_tokens, outcome.completion_tokens) == (
            "completed",
            3,
            6,
        )
    labels = {"model": "scripted", "purpose": "chat", "status": "completed"}
    assert sample(metrics.registry, "model_calls_total", labels) == 1
    tokens = {"model": "scripted", "kind": "completion"}
    assert sample(metrics.registry, "model_tokens_total", tokens) == 6


async def test_a_refusal_releases_what_earlier_guards_held_and_nothing_runs(
    models: ModelRegistry,
) -> None:
    held, refusing = RecordingGuard("held"), RecordingGuard("refusing", refuse=True)
    metrics = ModelCallMetrics()
    gateway = ModelGateway(models, [held, refusing], metrics)
    scripted = models.chat("scripted")
    assert isinstance(scripted, ScriptedChatModel)
    with pytest.raises(TooManyRequests):
        await gateway.chat(CALLER, "chat", "scripted").complete(request())
    assert scripted.requests == []
    [(_, outcome)] = held.settled
    assert (outcome.status, outcome.total_tokens) == ("cancelled", 0)
    refused = {"reason": "too-many-requests"}
    assert sample(metrics.registry, "model_call_refusals_total", refused) == 1
    calls = {"model": "scripted", "purpose": "chat", "status": "cancelled"}
    assert sample(metrics.registry, "model_calls_total", calls) == 0


async def test_a_stream_its_client_leaves_is_settled_once_with_what_was_sent(
    models: ModelRegistry,
) -> None:
    guard = RecordingGuard("guard")
    gateway = ModelGateway(models, [guard])
    async with aclosing(gateway.chat(CALLER, "turn", "slow").stream(request())) as chunks:
        async for chunk in chunks:
            if chunk.text.strip() == "two":
                break
    [(_, outcome)] = guard.settled
    assert (outcome.status, outcome.prompt_tokens, outcome.completion_tokens) == (
        "cancelled",
        3,
        2,
    )


async def test_a_cancelled_request_still_settles_with_its_whole_reservation(
    models: ModelRegistry,
) -> None:
    """A reply asked for in one body tells nothing of what it used until it ends: cut short,
    it may have generated up to `max_tokens`, and is charged that."""
    guard = RecordingGuard("guard")
    gateway = ModelGateway(models, [guard])
    task = asyncio.create_task(gateway.chat(CALLER, "chat", "slow").complete(request(40)))
    await asyncio.sleep(0.12)  # a few of the slow model's chunks
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [(_, outcome)] = guard.settled
    assert (outcome.status, outcome.completion_tokens) == ("cancelled", 40)


async def test_a_failed_stream_settles_as_failed_with_the_tokens_it_sent(
    models: ModelRegistry,
) -> None:
    guard = RecordingGuard("guard")
    gateway = ModelGateway(models, [guard])
    received: list[str] = []
    with pytest.raises(BadGateway):
        await drain(gateway.chat(CALLER, "chat", "failing").stream(request()), into=received)
    [(_, outcome)] = guard.settled
    assert received
    assert (outcome.status, outcome.completion_tokens) == ("failed", 2)


async def test_a_failed_reply_in_one_body_settles_as_failed_with_its_prompt(
    models: ModelRegistry,
) -> None:
    """Nothing of a reply asked for in one body reached the caller: it is charged its prompt,
    as a stream that failed before its first chunk is."""
    guard = RecordingGuard("guard")
    gateway = ModelGateway(models, [guard])
    with pytest.raises(BadGateway):
        await gateway.chat(CALLER, "chat", "failing").complete(request())
    [(call, outcome)] = guard.settled
    assert (outcome.status, outcome.prompt_tokens, outcome.completion_tokens) == (
        "failed",
        call.prompt_tokens,
        0,
    )


async def test_embeddings_count_their_input_tokens(models: ModelRegistry) -> None:
    guard = RecordingGuard("guard")
    gateway = ModelGateway(models, [guard])
    vectors = await gateway.embedding(CALLER, "embeddings", "embedder").embed(["a b c", "d"])
    assert len(vectors) == 2
    [call] = guard.admitted
    assert (call.kind, call.prompt_tokens, call.max_completion_tokens) == ("embedding", 8, 0)
    [(_, outcome)] = guard.settled
    assert (outcome.status, outcome.prompt_tokens, outcome.completion_tokens) == (
        "completed",
        8,
        0,
    )


async def test_settling_in_memory_runs_in_the_calls_own_task(models: ModelRegistry) -> None:
    first = RecordingGuard("first", in_memory=True)
    second = RecordingGuard("second", in_memory=True)
    gateway = ModelGateway(models, [first, second])
    task = asyncio.create_task(gateway.chat(CALLER, "chat", "scripted").complete(request()))
    await task
    assert first.settled_in == second.settled_in == [task]


async def test_settling_that_waits_runs_on_through_a_cancelled_request(
    models: ModelRegistry,
) -> None:
    """One guard settles in a database: every guard is then settled in a task of its own, which
    goes on when the request is cancelled again while it waits."""
    at_once = RecordingGuard("at-once", in_memory=True)
    waiting = RecordingGuard("waiting", settle_seconds=0.2)
    gateway = ModelGateway(models, [at_once, waiting])
    task = asyncio.create_task(gateway.chat(CALLER, "chat", "slow").complete(request()))
    await asyncio.sleep(0.12)  # a few of the slow model's chunks
    task.cancel()
    await wait_until(lambda: len(waiting.settled_in) == 1, within=5)
    task.cancel()  # while the settlement waits
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_until(lambda: len(waiting.settled) == 1, within=5)
    assert at_once.settled_in[0] is not task
    assert waiting.settled_in[0] is not task
    [(_, outcome)] = waiting.settled
    assert outcome.status == "cancelled"
