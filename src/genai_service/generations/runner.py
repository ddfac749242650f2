"""The server side of every generation: a task owned by the app, not by a connection.

A generation runs to its end whoever listens: its events go to the event log (readers replay
and follow them there), and its reply is stored with the runner's own session when it ends —
complete, cancelled with the text so far, or failed with a readable error.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from loguru import logger
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from genai_service.conversations.repository import ConversationRepository, MessageRepository
from genai_service.conversations.schemas import MessageRead
from genai_service.conversations.titles import TitleWriter
from genai_service.generations.events import EventLog, EventType
from genai_service.generations.orphans import OrphanCutoff, give_up
from genai_service.generations.repository import GenerationRepository
from genai_service.inference.base import ChatRequest, Usage
from genai_service.inference.registry import ModelRegistry
from genai_service.kit.async_iterators import close_iterator
from genai_service.kit.db import utcnow
from genai_service.kit.errors import AppError
from genai_service.models.conversation import (
    GenerationStatus,
    Message,
    MessageRole,
    MessageStatus,
)
from genai_service.settings import ConversationSettings

SHUTDOWN_WAIT_SECONDS = 10.0
CONVERSATION_DELETED = "conversation-deleted"
"""The `reason` of the final event of a generation whose conversation was deleted meanwhile."""


@dataclass(frozen=True, slots=True)
class GenerationPlan:
    """Everything a generation needs, decided (and committed) before it starts."""

    generation_id: uuid.UUID
    conversation_id: uuid.UUID
    model_name: str
    request: ChatRequest
    prompt_tokens: int
    deadline_at: datetime
    citations: list[dict[str, Any]] = field(default_factory=list)
    title_question: str | None = None
    """Set for untitled conversations: the question the title is written from."""


@dataclass(slots=True)
class _Outcome:
    status: GenerationStatus
    text: str
    usage: Usage | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _Ending:
    """How a generation ended, as its final event tells it: `done` when a completed or cancelled
    reply is stored, `error` when the reply failed or none is stored."""

    status: GenerationStatus
    message: Message | None
    detail: str | None = None
    reason: str | None = None

    @property
    def event_type(self) -> EventType:
        stored = self.message is not None and self.status is not GenerationStatus.FAILED
        return "done" if stored else "error"

    def data(self, generation_id: uuid.UUID) -> dict[str, Any]:
        data: dict[str, Any] = {
            "generation_id": str(generation_id),
            "status": self.status.value,
            "message": None if self.message is None else message_data(self.message),
        }
        if self.detail is not None:
            data["detail"] = self.detail
        if self.reason is not None:
            data["reason"] = self.reason
        return data


_MESSAGE_STATUS = {
    GenerationStatus.COMPLETED: MessageStatus.COMPLETED,
    GenerationStatus.CANCELLED: MessageStatus.CANCELLED,
    GenerationStatus.FAILED: MessageStatus.FAILED,
}


def message_data(message: Message) -> dict[str, Any]:
    return MessageRead.model_validate(message).model_dump(mode="json")


class GenerationRunner:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        models: ModelRegistry,
        events: EventLog,
        settings: ConversationSettings,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.models = models
        self.events = events
        self.settings = settings
        self.titles = TitleWriter(sessionmaker, settings.title_max_tokens)
        self._generations: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._chores: set[asyncio.Task[None]] = set()
        self._heartbeat: asyncio.Task[None] | None = None

    @property
    def running(self) -> int:
        return len(self._generations)

    def start(self) -> None:
        """Give up generations a stopped server left running, in the background (start-up does
        not wait for the database). Then, until `close`, renew the heartbeat of this process's
        generations and sweep for orphaned ones, every third of the liveness period."""
        self._chore(self._sweep())
        if self._heartbeat is None:
            self._heartbeat = asyncio.create_task(self._beat(), name="generation-heartbeat")

    async def launch(self, plan: GenerationPlan, first_event: dict[str, Any]) -> None:
        """Open the generation's event log with its `generation` event, then start it."""
        await self.events.open(plan.generation_id)
        await self.events.append(plan.generation_id, "generation", first_event)
        task = asyncio.create_task(self._guarded(plan), name=f"generation-{plan.generation_id}")
        self._generations[plan.generation_id] = task
        task.add_done_callback(lambda _: self._generations.pop(plan.generation_id, None))

    async def close(self) -> None:
        """Cancel what still runs (its partial replies are stored), then wait for it."""
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            heartbeat.cancel()
            await asyncio.wait({heartbeat})
        for generation_id in list(self._generations):
            await self.events.request_cancel(generation_id)
        pending = {*self._generations.values(), *self._chores}
        if pending:
            _, late = await asyncio.wait(pending, timeout=SHUTDOWN_WAIT_SECONDS)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)

    async def fail_stale(self, *, conversation_id: uuid.UUID | None = None) -> int:
        """Give up the running generations whose writer is gone (see `orphans`), each with a
        failed reply saying so; never one this process writes. Returns how many there were."""
        now = utcnow()
        cutoff = OrphanCutoff.at(now, self.settings.generation_liveness_seconds)
        given_up = 0
        async with self.sessionmaker.begin() as session:
            candidates = await GenerationRepository(session).abandoned(
                cutoff.condition(),
                excluding=set(self._generations),
                conversation_id=conversation_id,
            )
            for generation in candidates:
                if await give_up(session, generation, GenerationStatus.FAILED, now, cutoff):
                    given_up += 1
        if given_up:
            logger.warning("gave up {} generation(s) whose server stopped", given_up)
        return given_up

    async def _sweep(self) -> None:
        try:
            await self.fail_stale()
        except (SQLAlchemyError, OSError) as error:
            logger.warning("could not look for interrupted generations: {}", error)

    async def _beat(self) -> None:
        interval = self.settings.generation_liveness_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self._renew()
            except (SQLAlchemyError, OSError) as error:
                logger.warning("could not renew the running generations' heartbeat: {}", error)
            await self._sweep()

    async def _renew(self) -> None:
        """Renew this process's generations; stop those ended meanwhile by someone else (another
        process gave them up or deleted their conversation), so their model slots free up."""
        writing = set(self._generations)
        if not writing:
            return
        async with self.sessionmaker.begin() as session:
            running = await GenerationRepository(session).renew(writing, utcnow())
        for generation_id in writing - running:
            if generation_id in self._generations:
                logger.debug("generation {} was ended elsewhere; stopping it", generation_id)
                await self.events.request_cancel(generation_id)

    async def _guarded(self, plan: GenerationPlan) -> None:
        """`_run`, making sure the event log ends even when something unexpected fails."""
        try:
            await self._run(plan)
        except Exception:
            logger.exception("generation {} broke down", plan.generation_id)
            try:
                await self.events.append(
                    plan.generation_id,
                    "error",
                    {
                        "generation_id": str(plan.generation_id),
                        "status": GenerationStatus.FAILED.value,
                        "detail": "The server failed while writing this reply.",
                        "message": None,
                    },
                )
            except (RuntimeError, AppError):
                logger.debug("the event log of generation {} had ended", plan.generation_id)

    async def _run(self, plan: GenerationPlan) -> None:
        started = time.monotonic()
        outcome = await self._generate(plan)
        latency_ms = round((time.monotonic() - started) * 1000)
        try:
            ending = await self._store(plan, outcome, latency_ms)
        except SQLAlchemyError:
            logger.exception("the reply of generation {} could not be stored", plan.generation_id)
            ending = _Ending(GenerationStatus.FAILED, None, "The reply could not be stored.")
        await self.events.append(
            plan.generation_id, ending.event_type, ending.data(plan.generation_id)
        )
        stored = ending.status is GenerationStatus.COMPLETED and ending.message is not None
        if stored and plan.title_question is not None:
            self._chore(self._title(plan, plan.title_question, outcome.text))

    async def _generate(self, plan: GenerationPlan) -> _Outcome:
        parts: list[str] = []
        usage: Usage | None = None

        async def pump() -> None:
            nonlocal usage
            chunks = self.models.chat(plan.model_name).stream(plan.request)
            try:
                async for chunk in chunks:
                    if chunk.text:
                        parts.append(chunk.text)
                        await self.events.append(plan.generation_id, "delta", {"text": chunk.text})
                    if chunk.usage is not None:
                        usage = chunk.usage
            finally:
                # Closing the provider's stream frees a local engine's sequence slot at once.
                await close_iterator(chunks)

        pumping = asyncio.create_task(pump())
        cancel = asyncio.create_task(self.events.wait_for_cancel(plan.generation_id))
        timeout = max((plan.deadline_at - utcnow()).total_seconds(), 0.0)
        try:
            await asyncio.wait({pumping, cancel}, timeout=timeout, return_when="FIRST_COMPLETED")
        finally:
            cancel.cancel()
        if not pumping.done():
            pumping.cancel()
            await asyncio.wait({pumping})
            if pumping.cancelled():
                cancelled = cancel.done() and not cancel.cancelled()
                if cancelled:
                    return _Outcome(GenerationStatus.CANCELLED, "".join(parts))
                return _Outcome(
                    GenerationStatus.FAILED,
                    "".join(parts),
                    error="The reply took longer than the generation deadline allows.",
                )
        error = pumping.exception()
        if error is None:
            return _Outcome(GenerationStatus.COMPLETED, "".join(parts), usage=usage)
        if isinstance(error, AppError):
            logger.warning("generation {} failed: {}", plan.generation_id, error.detail)
            detail = f"{error.title}: {error.detail}"
        else:
            logger.opt(exception=error).error("generation {} failed", plan.generation_id)
            detail = "The model failed unexpectedly."
        return _Outcome(GenerationStatus.FAILED, "".join(parts), error=detail)

    async def _store(self, plan: GenerationPlan, outcome: _Outcome, latency_ms: int) -> _Ending:
        """The reply, written with the runner's own session — unless the generation was ended
        meanwhile by someone else, or its conversation was deleted: then nothing is written."""
        now = utcnow()
        usage = outcome.usage
        async with self.sessionmaker.begin() as session:
            generations = GenerationRepository(session)
            if not await generations.finish(plan.generation_id, outcome.status, now):
                return await self._not_stored(session, plan.generation_id)
            message = await MessageRepository(session).add(
                Message(
                    conversation_id=plan.conversation_id,
                    role=MessageRole.ASSISTANT,
                    content=outcome.text,
                    model=plan.model_name,
                    prompt_tokens=usage.prompt_tokens if usage else plan.prompt_tokens,
                    completion_tokens=usage.completion_tokens if usage else None,
                    latency_ms=latency_ms,
                    status=_MESSAGE_STATUS[outcome.status],
                    error=outcome.error,
                    citations=plan.citations,
                    created_at=now,
                )
            )
            await generations.attach_reply(plan.generation_id, message.id)
            await ConversationRepository(session).touch(plan.conversation_id, now)
            return _Ending(outcome.status, message, outcome.error)

    @staticmethod
    async def _not_stored(session: AsyncSession, generation_id: uuid.UUID) -> _Ending:
        generation = await GenerationRepository(session).get(generation_id)
        if generation is None:
            logger.info("generation {} dropped: its conversation was deleted", generation_id)
            return _Ending(
                GenerationStatus.CANCELLED,
                None,
                "The conversation was deleted while this reply was being written; the reply "
                "was dropped.",
                reason=CONVERSATION_DELETED,
            )
        logger.warning("generation {} was given up by another process", generation_id)
        reply_id = generation.assistant_message_id
        reply = None if reply_id is None else await MessageRepository(session).get(reply_id)
        return _Ending(
            generation.status,
            reply,
            "The reply was given up as interrupted while it was being written (another server "
            "process took this one for stopped).",
        )

    async def _title(self, plan: GenerationPlan, question: str, answer: str) -> None:
        model = self.models.chat(plan.model_name)
        await self.titles.write(model, plan.conversation_id, question, answer)

    def _chore(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coroutine)
        self._chores.add(task)
        task.add_done_callback(self._chore_done)

    def _chore_done(self, task: asyncio.Task[None]) -> None:
        self._chores.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.opt(exception=task.exception()).error("a background task failed")
