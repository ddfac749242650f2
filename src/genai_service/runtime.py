"""The runtime: every long-lived part of the service, as one typed object, and how routes
reach it (`RuntimeDep` and the aliases below, never strings on the app's state).

`composition.open_runtime` builds it. This module only names the parts' types (for the type
checker), so the domains' dependencies can import it without importing each other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from genai_service.kit.db import request_session
from genai_service.settings import Settings

if TYPE_CHECKING:
    from genai_service.auth.caller_cache import CallerCache
    from genai_service.auth.throttle import LoginThrottle
    from genai_service.documents.runner import IngestionRunner
    from genai_service.documents.storage import DocumentStorage
    from genai_service.gateway.gateway import ModelGateway
    from genai_service.generations.events import EventLog
    from genai_service.generations.runner import GenerationRunner
    from genai_service.guards.budget import BudgetGuard
    from genai_service.guards.limits_cache import CachedLimits
    from genai_service.guards.rate_limits.storage import RateLimitStorage
    from genai_service.inference.registry import ModelRegistry
    from genai_service.kit.redis_client import SharedRedis
    from genai_service.kit.redis_signals import RedisSignals
    from genai_service.retrieval.service import RetrievalService
    from genai_service.retrieval.vector_store import QdrantVectorStore

RUNTIME_STATE = "runtime"
"""The attribute of `app.state` the lifespan keeps the runtime under (read by `runtime_of`)."""


@dataclass(slots=True)
class Runtime:
    """Set once by `open_runtime` (tests may swap a part for a stand-in)."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    models: ModelRegistry
    """For what is not a model call: readiness, names, context windows, token counts."""
    gateway: ModelGateway
    """For every model call: it knows the caller."""
    limits: CachedLimits
    """The limits in force for a caller, as the guards read them; whatever changes limits calls
    `limits.forget_on_commit`."""
    rate_limits: RateLimitStorage
    """The counters of the rate limits and calls in flight."""
    budget: BudgetGuard
    """The gateway's token budgets: reservations, settlement, the sweep of stopped processes'."""
    events: EventLog
    login_throttle: LoginThrottle
    caller_cache: CallerCache
    storage: DocumentStorage
    vector_store: QdrantVectorStore | None
    """`None` in `tool` mode."""
    retriever: RetrievalService | None
    """`None` without an embedding model: document turns and search answer 503."""
    generations: GenerationRunner | None
    """The server's; `None` in other modes."""
    ingestion: IngestionRunner | None
    """`None` when this process does not ingest (another runs `genai-service worker`)."""
    redis: SharedRedis | None = None
    """The Redis shared with the other server processes; `None`: everything is in-process."""
    signals: RedisSignals | None = None
    """Pub/sub between the server processes, with `redis`."""


def runtime_of(app: Starlette) -> Runtime:
    """The runtime an app's lifespan opened."""
    runtime = getattr(app.state, RUNTIME_STATE, None)
    if not isinstance(runtime, Runtime):
        raise RuntimeError("the app's runtime is not open (its lifespan has not started)")
    return runtime


async def get_runtime(connection: HTTPConnection) -> Runtime:
    return runtime_of(connection.app)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_settings(runtime: RuntimeDep) -> Settings:
    return runtime.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """One session per request, committed once before the response is sent (see
    `kit.db.request_session`)."""
    async with request_session(runtime.sessionmaker) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
