"""Services of the conversations domain.

A turn or a cancel waits for the generation runner, which writes with its own session: those
routes take their caller from `auth.dependencies.ModelCaller`, checked outside the request's
session, so the request holds no database transaction while it waits.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from genai_service.conversations.service import ConversationService
from genai_service.conversations.turns import TurnService
from genai_service.generations.dependencies import EventLogDep
from genai_service.inference.dependencies import ModelsDep
from genai_service.runtime import Runtime, RuntimeDep, SessionDep


def turn_service_of(runtime: Runtime) -> TurnService:
    """Built from the runtime alone, so HTTP routes and the WebSocket share it."""
    if runtime.generations is None:
        raise RuntimeError("this process runs no generations")
    return TurnService(
        sessionmaker=runtime.sessionmaker,
        models=runtime.models,
        gateway=runtime.gateway,
        runner=runtime.generations,
        events=runtime.events,
        retriever=runtime.retriever,
        settings=runtime.settings.conversations,
    )


async def get_turn_service(runtime: RuntimeDep) -> TurnService:
    return turn_service_of(runtime)


async def get_conversation_service(
    session: SessionDep, models: ModelsDep, events: EventLogDep
) -> ConversationService:
    return ConversationService(session, models, events)


TurnServiceDep = Annotated[TurnService, Depends(get_turn_service)]
ConversationServiceDep = Annotated[ConversationService, Depends(get_conversation_service)]
