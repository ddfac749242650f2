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
from dataclasses import dataclass, replace
from typing import Any

from loguru import logger
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from genai_service.gateway.guarded_models import AdmittedChatCall
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
"""How long the replies of generations stopped at shutdown, and chores, may take to be stored."""
CONVERSATION_DELETED = "conversation-deleted"
"""The `reason` of the final event of a generation whose conversation was deleted meanwhile."""
SERVER_SHUTDOWN = "server-shutdown"
"""The `reason` of the final event of a generation stopped because its process was stopping:
the reply so far is stored, and the turn can be asked again of another process."""
STOPPED_BY_SHUTDOWN = (
    "The server was restarted before this reply was finished; the reply so far is kept."
)


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
        events: EventLog,
        settings: ConversationSettings,
        replies: ReplySink,
        *,
        shutdown_grace_seconds: float,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.events = events
        self.settings = settings
        self.replies = replies
        self.shutdown_grace_seconds = shutdown_grace_seconds
        self._generations: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._chores: set[asyncio.Task[None]] = set()
        self._draining: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
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

    @property
    def accepting(self) -> bool:
        """False once the process drains: new turns are refused (`ServerShuttingDown`)."""
        return self._draining is None

    def start(self) -> None:
        self.heartbeat.start()

    async def launch(
        self, plan: GenerationPlan, first_event: dict[str, Any], call: AdmittedChatCall
    ) -> None:
        """Open the generation's event log with its `generation` event, then start it: `call`,
        the model call admitted for it, is streamed or released by the runner from now on. When
        the log cannot be opened (Redis unreachable), the generation is stored as failed at once
        and the error raised: nobody could follow or cancel it."""
        try:
            await self.events.open(plan.generation_id)
            await self.events.append(plan.generation_id, "generation", first_event)
        except AppError as error:
            await call.release()
            failed = GenerationOutcome(
                GenerationStatus.FAILED, "", error=f"{error.title}: {error.detail}"
            )
            try:
                await self._store(plan, failed)
            except SQLAlchemyError:
                logger.exception("generation {} could not be stored", plan.generation_id)
            raise
        except BaseException:
            await call.release()
            raise
        task = asyncio.create_task(
            self._guarded(plan, call), name=f"generation-{plan.generation_id}"
        )
        self._generations[plan.generation_id] = task
        task.add_done_callback(lambda _: self._generations.pop(plan.generation_id, None))

    def drain(self) -> None:
        """Stop admitting generations, and give those running `shutdown_grace_seconds` to
        finish; any still running then is stopped with its reply so far stored (final event
        reason `server-shutdown`). Called when the process is told to stop; idempotent."""
        if self._draining is None:
            self._draining = asyncio.create_task(self._drain(), name="drain-generations")

    async def close(self) -> None:
        """Drain (unless it began already) and wait for its end, then stop the heartbeat: it
        renews the generations that are still finishing, so no other process gives them up."""
        self.drain()
        if self._draining is not None:
            await asyncio.shield(self._draining)
        await self.heartbeat.stop()
        if self._chores:
            _, late = await asyncio.wait(self._chores, timeout=SHUTDOWN_WAIT_SECONDS)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.shutdown_grace_seconds
        if self._generations:
            logger.info(
                "draining: {} generation(s) may run for {:g} s more",
                len(self._generations),
                self.shutdown_grace_seconds,
            )
        # A turn admitted just before the drain began may launch meanwhile: it is waited for too.
        while self._generations and (remaining := deadline - loop.time()) > 0:
            await asyncio.wait(set(self._generations.values()), timeout=remaining)
        if not self._generations:
            return
        logger.warning("draining: stopping {} generation(s)", len(self._generations))
        self._stopping.set()
        _, late = await asyncio.wait(set(self._generations.values()), timeout=SHUTDOWN_WAIT_SECONDS)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)

    async def fail_stale(self, *, conversation_id: uuid.UUID | None = None) -> int:
        return await self.heartbeat.fail_stale(conversation_id=conversation_id)

    async def _guarded(self, plan: GenerationPlan, call: AdmittedChatCall) -> None:
        """`_run`, making sure the event log ends even when something unexpected fails."""
        try:
            await self._run(plan, call)
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

    async def _run(self, plan: GenerationPlan, call: AdmittedChatCall) -> None:
        try:
            outcome = await self._generate(plan, call)
        finally:
            # A call whose stream never started (a deadline already past) is settled here.
            await call.release()
        try:
            ending = await self._store(plan, outcome)
        except SQLAlchemyError:
            logger.exception("the reply of generation {} could not be stored", plan.generation_id)
            ending = _Ending(GenerationStatus.FAILED, None, "The reply could not be stored.")
        if outcome.error == STOPPED_BY_SHUTDOWN and ending.reason is None:
            ending = replace(ending, reason=SERVER_SHUTDOWN)
        try:
            await self.events.append(
                plan.generation_id, ending.event_type, ending.data(plan.generation_id)
            )
        except AppError as error:
            # Its readers were told why they could read no further; the reply is stored.
            logger.warning("generation {} ended unannounced: {}", plan.generation_id, error.detail)
        if ending.status is GenerationStatus.COMPLETED and ending.reply is not None:
            self._chore(self.replies.completed(plan, outcome.text))

    async def _generate(self, plan: GenerationPlan, call: AdmittedChatCall) -> GenerationOutcome:
        parts: list[str] = []
        usage: Usage | None = None
        started = time.monotonic()

        def ended(status: GenerationStatus, error: str | None = None) -> GenerationOutcome:
            latency_ms = round((time.monotonic() - started) * 1000)
            return GenerationOutcome(status, "".join(parts), usage, error, latency_ms)

        # Set when the pump is cancelled: it also stops by itself at its next chunk, should the
        # cancellation be lost in a Redis call (see `kit.tasks`).
        stopped = False

        async def pump() -> None:
            nonlocal usage
            chunks = call.stream()
            try:
                async for chunk in chunks:
                    if stopped:
                        raise asyncio.CancelledError
                    if chunk.text:
                        parts.append(chunk.text)
                        await self.events.append(plan.generation_id, "delta", {"text": chunk.text})
                    if chunk.usage is not None:
                        usage = chunk.usage
                    if stopped:
                        raise asyncio.CancelledError
            finally:
                # Closing the provider's stream frees a local engine's sequence slot at once.
                await close_iterator(chunks)

        pumping = asyncio.create_task(pump())
        cancel = asyncio.create_task(self.events.wait_for_cancel(plan.generation_id))
        stopping = asyncio.create_task(self._stopping.wait())
        timeout = max((plan.deadline_at - utcnow()).total_seconds(), 0.0)
        try:
            await asyncio.wait(
                {pumping, cancel, stopping}, timeout=timeout, return_when="FIRST_COMPLETED"
            )
        finally:
            cancel.cancel()
            stopping.cancel()
        if not pumping.done():
            stopped = True
            pumping.cancel()
            await asyncio.wait({pumping})
            if pumping.cancelled():
                cancelled = cancel.done() and not cancel.cancelled()
                if cancelled:
                    return ended(GenerationStatus.CANCELLED)
                if self._stopping.is_set():
                    return ended(GenerationStatus.FAILED, STOPPED_BY_SHUTDOWN)
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
