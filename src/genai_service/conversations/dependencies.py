"""Services of the conversations domain, and the caller of endpoints that outlast a request.

A turn or a cancel waits for the generation runner, which writes with its own session. Their
caller is therefore resolved in a short session committed at once (recording an API key's use),
so the request holds no database transaction while it waits.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import HTTPConnection

from genai_service.auth.credentials import CredentialVerifier
from genai_service.auth.dependencies import (
    ANONYMOUS_CREDENTIAL,
    access_token_codec,
    bearer_credential,
)
from genai_service.auth.errors import AuthenticationRequired
from genai_service.conversations.service import ConversationService
from genai_service.conversations.turns import TurnService
from genai_service.generations.dependencies import (
    EventLogDep,
    get_event_log,
    get_generation_runner,
)
from genai_service.inference.dependencies import ModelsDep
from genai_service.kit.db import SessionDep
from genai_service.models.user import User
from genai_service.retrieval.sources import SourceRetriever
from genai_service.settings import Settings


async def authenticate(connection: HTTPConnection, credential: str | None) -> User:
    """The user a credential stands for (the anonymous user without one, in anonymous mode).

    Same rules as `auth.dependencies.CurrentUser`; every failure is 401.
    """
    settings: Settings = connection.app.state.settings
    sessionmaker: async_sessionmaker[AsyncSession] = connection.app.state.sessionmaker
    async with sessionmaker.begin() as session:
        verifier = CredentialVerifier(session, access_token_codec(settings))
        if credential is not None and credential != ANONYMOUS_CREDENTIAL:
            principal = await verifier.verify(credential)
        elif settings.allows_anonymous:
            principal = await verifier.anonymous()
        else:
            raise AuthenticationRequired()
    return principal.user


async def get_waiting_user(
    connection: HTTPConnection,
    credential: Annotated[str | None, Depends(bearer_credential)],
) -> User:
    return await authenticate(connection, credential)


WaitingUser = Annotated[User, Depends(get_waiting_user)]
"""`CurrentUser` for endpoints that wait for a generation."""


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
