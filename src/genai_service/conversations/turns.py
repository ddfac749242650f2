"""A chat turn: store the question, then hand the reply to the generation runner.

The admission of a turn (user message plus a running generation row) is its own unit of work,
committed before the generation starts: the generation outlives the request, and its runner
writes the reply with its own session. So this service opens its transactions itself, like
background work does, instead of using the request's session.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from genai_service.conversations.prompt import Prompt, build_prompt
from genai_service.conversations.repository import ConversationRepository, MessageRepository
from genai_service.conversations.schemas import MessageRead, TurnCreate, TurnRead
from genai_service.gateway.caller import Caller
from genai_service.gateway.gateway import ModelGateway
from genai_service.generations.errors import ServerShuttingDown
from genai_service.generations.events import EventLog, GenerationEvent
from genai_service.generations.plan import GenerationPlan
from genai_service.generations.repository import GenerationRepository
from genai_service.generations.runner import (
    CONVERSATION_DELETED,
    GenerationRunner,
)
from genai_service.generations.service import GenerationNotFound
from genai_service.inference.base import ChatMessage, ChatModel, ChatRequest, SamplingParams
from genai_service.inference.registry import ModelRegistry
from genai_service.kit.async_iterators import close_iterator
from genai_service.kit.db import utcnow
from genai_service.kit.errors import BadGateway, Conflict, NotFound
from genai_service.models.conversation import Conversation, Generation, Message, MessageRole
from genai_service.retrieval.sources import (
    DocumentScope,
    DocumentsUnavailable,
    Source,
    SourceRetriever,
)
from genai_service.settings import ConversationSettings


class ConversationNotFound(NotFound):
    title = "Conversation not found"
    slug = "conversation-not-found"


class ConversationDeleted(ConversationNotFound):
    title = "Conversation deleted"
    slug = "conversation-deleted"


class GenerationInProgress(Conflict):
    title = "Generation in progress"
    slug = "generation-in-progress"


class GenerationFailed(BadGateway):
    title = "Generation failed"
    slug = "generation-failed"


@dataclass(frozen=True, slots=True)
class StartedTurn:
    generation_id: uuid.UUID
    user_message: MessageRead


def document_scope(value: Any) -> DocumentScope | None:
    """A stored or requested `documents` value as a retrieval scope (`None`: no documents)."""
    if value is None:
        return None
    if value == "all":
        return "all"
    ids = [item if isinstance(item, uuid.UUID) else uuid.UUID(str(item)) for item in value]
    return ids or None


def citation_of(source: Source) -> dict[str, Any]:
    citation = asdict(source)
    citation["quote"] = citation.pop("text")
    citation["document_id"] = str(source.document_id)
    return citation


class TurnService:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        models: ModelRegistry,
        gateway: ModelGateway,
        runner: GenerationRunner,
        events: EventLog,
        retriever: SourceRetriever | None,
        settings: ConversationSettings,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.models = models
        self.gateway = gateway
        self.runner = runner
        self.events = events
        self.retriever = retriever
        self.settings = settings

    async def start(
        self, caller: Caller, conversation_id: uuid.UUID, turn: TurnCreate
    ) -> StartedTurn:
        """Store the user message and start the reply; 409 while another reply is running, 429
        (nothing stored) when the caller's limits refuse the reply, 503 once this process drains
        before it stops."""
        if not self.runner.accepting:
            raise ServerShuttingDown(
                "This server process is shutting down; send the turn again (to another one).",
                retry_after=1,
            )
        conversation = await self.conversation_for(caller.user_id, conversation_id)
        await self.runner.fail_stale(conversation_id=conversation.id)
        model_name = conversation.model or self.models.default_chat_name
        model = self.models.chat(model_name)
        requested = (
            turn.documents if "documents" in turn.model_fields_set else conversation.documents
        )
        scope = document_scope(requested)
        sources = await self._retrieve(caller, scope, turn.content) if scope else []
        # An explicit max_tokens must fit; the default adapts to small context windows.
        max_tokens = turn.max_tokens or min(
            self.settings.default_max_tokens, max(model.context_window // 2, 1)
        )
        temperature = (
            turn.temperature if turn.temperature is not None else self.settings.default_temperature
        )
        sampling = SamplingParams(max_tokens=max_tokens, temperature=temperature, seed=turn.seed)
        prompt, seen = await self._prompt(conversation, model, turn.content, max_tokens, sources)
        # Admitted before anything is stored, so a turn over budget leaves no question without
        # a reply behind; and outside the turn's transactions, as admission takes connections
        # of its own (a transaction held open meanwhile could exhaust the pool).
        admitted = await self.gateway.chat(caller, "turn", model_name).admit(
            ChatRequest(messages=prompt.messages, sampling=sampling)
        )
        try:
            generation, user = await self._store(caller, conversation, turn, model_name, seen)
            plan = self._plan(caller, conversation, generation, prompt, turn)
        except BaseException:
            await admitted.release()  # not launched: nothing will run it
            raise
        # From here on the runner owns the call: it streams it, or releases it.
        await self.runner.launch(
            plan,
            {
                "generation_id": str(generation.id),
                "conversation_id": str(conversation.id),
                "model": model_name,
                "user_message": user.model_dump(mode="json"),
            },
            admitted,
        )
        return StartedTurn(generation_id=generation.id, user_message=user)

    async def _prompt(
        self,
        conversation: Conversation,
        model: ChatModel,
        question: str,
        max_tokens: int,
        sources: list[Source],
    ) -> tuple[Prompt, int]:
        """The turn's prompt, and how many messages the conversation had when it was read."""
        async with self.sessionmaker() as session:
            running = await GenerationRepository(session).running_for_conversation(conversation.id)
            if running is not None:
                raise self._in_progress()
            messages = MessageRepository(session)
            seen = await messages.count(conversation.id)
            history = await messages.newest_for_prompt(
                conversation.id, self.settings.history_messages
            )
        prompt = await asyncio.to_thread(
            build_prompt,
            model,
            system_prompt=conversation.system_prompt,
            history=[ChatMessage(role=m.role.value, content=m.content) for m in history],
            question=question,
            max_tokens=max_tokens,
            sources=sources,
        )
        return prompt, seen

    async def _store(
        self,
        caller: Caller,
        conversation: Conversation,
        turn: TurnCreate,
        model_name: str,
        seen: int,
    ) -> tuple[Generation, MessageRead]:
        """The question and a running generation, committed; 409 when another turn started or
        ended since the prompt was read (the prompt would miss its messages)."""
        now = utcnow()
        try:
            async with self.sessionmaker.begin() as session:
                generations = GenerationRepository(session)
                messages = MessageRepository(session)
                running = await generations.running_for_conversation(conversation.id)
                if running is not None or await messages.count(conversation.id) != seen:
                    raise self._in_progress()
                user_message = await messages.add(
                    Message(
                        conversation_id=conversation.id,
                        role=MessageRole.USER,
                        content=turn.content,
                        created_at=now,
                    )
                )
                generation = Generation(
                    conversation_id=conversation.id,
                    owner_id=caller.user_id,
                    user_message_id=user_message.id,
                    model=model_name,
                    deadline_at=now + timedelta(seconds=self.settings.generation_deadline_seconds),
                    created_at=now,
                )
                await generations.add(generation)
                await ConversationRepository(session).touch(conversation.id, now)
        except IntegrityError:
            # Another turn's running generation won the race, or the conversation was deleted.
            await self.conversation_for(caller.user_id, conversation.id)
            raise self._in_progress() from None
        return generation, MessageRead.model_validate(user_message)

    async def conversation_for(
        self, owner_id: uuid.UUID, conversation_id: uuid.UUID
    ) -> Conversation:
        async with self.sessionmaker() as session:
            conversation = await ConversationRepository(session).get_for_owner(
                conversation_id, owner_id
            )
        if conversation is None:
            raise ConversationNotFound("No such conversation.")
        return conversation

    async def wait(self, started: StartedTurn) -> TurnRead:
        """Wait for the end of a started turn: its reply; 502 with the failed reply stored; or
        404 when the conversation was deleted meanwhile (the reply was dropped)."""
        terminal = await self.terminal_event(started.generation_id)
        message = terminal.data.get("message")
        detail = str(terminal.data.get("detail") or "The reply failed.")
        if terminal.data.get("reason") == CONVERSATION_DELETED:
            raise ConversationDeleted(detail, extra={"generation_id": str(started.generation_id)})
        if terminal.type == "error":
            raise GenerationFailed(
                detail,
                extra={
                    "generation_id": str(started.generation_id),
                    "user_message": started.user_message.model_dump(mode="json"),
                    "assistant_message": message,
                },
            )
        return TurnRead(
            generation_id=started.generation_id,
            user_message=started.user_message,
            assistant_message=MessageRead.model_validate(message),
        )

    async def follow(
        self, caller: Caller, conversation_id: uuid.UUID, generation_id: uuid.UUID, *, after: int
    ) -> AsyncIterator[GenerationEvent]:
        """The events after `after` of a generation of this conversation, then live ones —
        whichever process writes it, when the event log is shared; 410 once they expired."""
        async with self.sessionmaker() as session:
            generation = await GenerationRepository(session).get_for_owner(
                generation_id, caller.user_id
            )
        if generation is None or generation.conversation_id != conversation_id:
            raise GenerationNotFound("No such generation in this conversation.")
        return await self.events.subscribe(generation_id, after=after)

    async def terminal_event(self, generation_id: uuid.UUID) -> GenerationEvent:
        events = await self.events.subscribe(generation_id)
        try:
            async for event in events:
                if event.is_terminal:
                    return event
        finally:
            await close_iterator(events)
        raise GenerationFailed("The generation ended without a final event.")

    async def _retrieve(self, caller: Caller, scope: DocumentScope, question: str) -> list[Source]:
        if self.retriever is None:
            raise DocumentsUnavailable(
                "Document search needs an embedding model and this server has none; send the "
                "turn without `documents` (or clear the conversation's `documents`)."
            )
        return await self.retriever.retrieve(caller, question, scope)

    def _plan(
        self,
        caller: Caller,
        conversation: Conversation,
        generation: Generation,
        prompt: Prompt,
        turn: TurnCreate,
    ) -> GenerationPlan:
        return GenerationPlan(
            generation_id=generation.id,
            conversation_id=conversation.id,
            caller=caller,
            model_name=generation.model,
            prompt_tokens=prompt.prompt_tokens,
            deadline_at=generation.deadline_at,
            citations=[citation_of(source) for source in prompt.sources],
            title_question=turn.content if conversation.title is None else None,
        )

    @staticmethod
    def _in_progress() -> GenerationInProgress:
        return GenerationInProgress(
            "A reply is being written in this conversation; wait for it or cancel it first."
        )
