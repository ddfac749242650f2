"""Services of the conversations domain.

A turn or a cancel waits for the generation runner, which writes with its own session: those
routes take their caller from `auth.dependencies.ModelCaller`, checked outside the request's
session, so the request holds no database transaction while it waits.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from genai_service.conversations.service import ConversationService
from genai_service.conversations.turns import TurnService
from genai_service.generations.dependencies import (
    EventLogDep,
    get_event_log,
    get_generation_runner,
)
from genai_service.inference.dependencies import ModelsDep
from genai_service.kit.db import SessionDep
from genai_service.retrieval.sources import SourceRetriever
from genai_service.settings import Settings


def get_source_retriever(connection: HTTPConnection) -> SourceRetriever | None:
    """The document retriever, when document search is configured."""
    retriever: SourceRetriever | None = getattr(connection.app.state, "source_retriever", None)
    return retriever


def turn_service_for(connection: HTTPConnection) -> TurnService:
    """Built from the app alone, so HTTP routes and the WebSocket share it."""
    settings: Settings = connection.app.state.settings
    return TurnService(
        sessionmaker=connection.app.state.sessionmaker,
        models=connection.app.state.models,
        runner=get_generation_runner(connection),
        events=get_event_log(connection),
        retriever=get_source_retriever(connection),
        settings=settings.conversations,
    )


def get_conversation_service(
    session: SessionDep, models: ModelsDep, events: EventLogDep
) -> ConversationService:
    return ConversationService(session, models, events)


TurnServiceDep = Annotated[TurnService, Depends(turn_service_for)]
ConversationServiceDep = Annotated[ConversationService, Depends(get_conversation_service)]
