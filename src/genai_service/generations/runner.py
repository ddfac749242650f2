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
from dataclasses import dataclass
from typing import Any

from loguru import logger
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from genai_service.gateway.gateway import ModelGateway
from genai_service.generations.events import EventLog, EventType
from genai_service.generations.heartbeat import Heartbeat
from genai_service.generations.plan import GenerationPlan
from genai_service.generations.replies import GenerationOutcome, ReplySink, StoredReply
from genai_service.generations.repository import GenerationRepository
from genai_service.inference.base import Usage
from genai_service.kit.async_iterators import close_iterator
from genai_service.kit.db import utcnow
from genai_service.kit.errors import AppError
from genai_service.models.conversation import GenerationStatus
from genai_service.settings import ConversationSettings

SHUTDOWN_WAIT_SECONDS = 10.0
CONVERSATION_DELETED = "conversation-deleted"
"""The `reason` of the final event of a generation whose conversation was deleted meanwhile."""


@dataclass(frozen=True, slots=True)
class _Ending:
    """How a generation ended, as its final event tells it: `done` when a completed or cancelled
    reply is stored, `error` when the reply failed or none is stored."""

    status: GenerationStatus
    reply: StoredReply | None
    detail: str | None = None
    reason: str | None = None

    @property
    def event_type(self) -> EventType:
        stored = self.reply is not None and self.status is not GenerationStatus.FAILED
        return "done" if stored else "error"

    def data(self, generation_id: uuid.UUID) -> dict[str, Any]:
        data: dict[str, Any] = {
            "generation_id": str(generation_id),
            "status": self.status.value,
            "message": None if self.reply is None else self.reply.data,
        }
        if self.detail is not None:
            data["detail"] = self.detail
        if self.reason is not None:
            data["reason"] = self.reason
        return data


class GenerationRunner:
    """Runs generations as tasks of the app: each streams its model's reply into the event log,
    then hands the reply to the `ReplySink`. Liveness (heartbeats, orphans) is `heartbeat`'s."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        gateway: ModelGateway,
        events: EventLog,
        settings: ConversationSettings,
        replies: ReplySink,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.gateway = gateway
        self.events = events
        self.settings = settings
        self.replies = replies
        self._generations: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._stops: dict[uuid.UUID, asyncio.Event] = {}
        self._chores: set[asyncio.Task[None]] = set()
        self.heartbeat = Heartbeat(
            sessionmaker,
            events,
            replies,
            liveness_seconds=settings.generation_liveness_seconds,
            writing=lambda: set(self._generations),
        )

    @property
    def running(self) -> int:
        return len(self._generations)

    def start(self) -> None:
        self.heartbeat.start()

    async def launch(self, plan: GenerationPlan, first_event: dict[str, Any]) -> None:
        """Open the generation's event log with its `generation` event, then start it. When the
        log cannot be opened (Redis unreachable), the generation is stored as failed at once and
        the error raised: nobody could follow or cancel it."""
        try:
            await self.events.open(plan.generation_id)
            await self.events.append(plan.generation_id, "generation", first_event)
        except AppError as error:
            failed = GenerationOutcome(
                GenerationStatus.FAILED, "", error=f"{error.title}: {error.detail}"
            )
            try:
                await self._store(plan, failed)
            except SQLAlchemyError:
                logger.exception("generation {} could not be stored", plan.generation_id)
            raise
        task = asyncio.create_task(self._guarded(plan), name=f"generation-{plan.generation_id}")
        self._generations[plan.generation_id] = task
        task.add_done_callback(lambda _: self._generations.pop(plan.generation_id, None))

    async def close(self) -> None:
        """Cancel what still runs (its partial replies are stored), then wait for it."""
        await self.heartbeat.stop()
        for stop in self._stops.values():
            stop.set()  # directly, not through the event log: it may be unreachable
        pending = {*self._generations.values(), *self._chores}
        if pending:
            _, late = await asyncio.wait(pending, timeout=SHUTDOWN_WAIT_SECONDS)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)

    async def fail_stale(self, *, conversation_id: uuid.UUID | None = None) -> int:
        return await self.heartbeat.fail_stale(conversation_id=conversation_id)

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
        outcome = await self._generate(plan)
        try:
            ending = await self._store(plan, outcome)
        except SQLAlchemyError:
            logger.exception("the reply of generation {} could not be stored", plan.generation_id)
            ending = _Ending(GenerationStatus.FAILED, None, "The reply could not be stored.")
        try:
            await self.events.append(
                plan.generation_id, ending.event_type, ending.data(plan.generation_id)
            )
        except AppError as error:
            # Its readers were told why they could read no further; the reply is stored.
            logger.warning("generation {} ended unannounced: {}", plan.generation_id, error.detail)
        if ending.status is GenerationStatus.COMPLETED and ending.reply is not None:
            self._chore(self.replies.completed(plan, outcome.text))

    async def _generate(self, plan: GenerationPlan) -> GenerationOutcome:
        parts: list[str] = []
        usage: Usage | None = None
        started = time.monotonic()

        def ended(status: GenerationStatus, error: str | None = None) -> GenerationOutcome:
            latency_ms = round((time.monotonic() - started) * 1000)
            return GenerationOutcome(status, "".join(parts), usage, error, latency_ms)

        async def pump() -> None:
            nonlocal usage
            model = self.gateway.chat(plan.caller, "turn", plan.model_name)
            chunks = model.stream(plan.request)
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
        cancel = asyncio.create_task(self._until_cancelled(plan.generation_id))
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
                    return ended(GenerationStatus.CANCELLED)
                return ended(
                    GenerationStatus.FAILED,
                    "The reply took longer than the generation deadline allows.",
                )
        error = pumping.exception()
        if error is None:
            return ended(GenerationStatus.COMPLETED)
        if isinstance(error, AppError):
            logger.warning("generation {} failed: {}", plan.generation_id, error.detail)
            detail = f"{error.title}: {error.detail}"
        else:
            logger.opt(exception=error).error("generation {} failed", plan.generation_id)
            detail = "The model failed unexpectedly."
        return ended(GenerationStatus.FAILED, detail)

    async def _until_cancelled(self, generation_id: uuid.UUID) -> None:
        """Return when a cancel is requested through the event log, or by `close`."""
        stop = self._stops.setdefault(generation_id, asyncio.Event())
        waits = {
            asyncio.ensure_future(self.events.wait_for_cancel(generation_id)),
            asyncio.ensure_future(stop.wait()),
        }
        try:
            await asyncio.wait(waits, return_when="FIRST_COMPLETED")
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.wait(waits)
            del self._stops[generation_id]

    async def _store(self, plan: GenerationPlan, outcome: GenerationOutcome) -> _Ending:
        """The reply, written with the runner's own session — unless the generation was ended
        meanwhile by someone else, or its conversation was deleted: then nothing is written."""
        async with self.sessionmaker.begin() as session:
            generations = GenerationRepository(session)
            if not await generations.finish(plan.generation_id, outcome.status, utcnow()):
                return await self._not_stored(session, plan.generation_id)
            reply = await self.replies.store(session, plan, outcome)
            await generations.attach_reply(plan.generation_id, reply.id)
            return _Ending(outcome.status, reply, outcome.error)

    async def _not_stored(self, session: AsyncSession, generation_id: uuid.UUID) -> _Ending:
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
        reply = None if reply_id is None else await self.replies.read(session, reply_id)
        return _Ending(
            generation.status,
            reply,
            "The reply was given up as interrupted while it was being written (another server "
            "process took this one for stopped).",
        )

    def _chore(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coroutine)
        self._chores.add(task)
        task.add_done_callback(self._chore_done)

    def _chore_done(self, task: asyncio.Task[None]) -> None:
        self._chores.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.opt(exception=task.exception()).error("a background task failed")
