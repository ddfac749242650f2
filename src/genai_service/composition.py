"""The composition root: `open_runtime` builds every long-lived part, in order, and closes them
in reverse. The server's lifespan, `genai-service worker` and the command line open it, each in
its mode, and get a typed `Runtime`.

- `server`: everything; models load in the background (readiness says when), the generation
  runner starts, and the ingestion runner when this process ingests.
- `worker`: the database, the embedding model (a worker never needs the chat model), the vector
  store and an ingestion runner it drives itself.
- `tool`: the database only, for the command line's one-off changes.

With `GENAI_REDIS__URL`, a server keeps what its requests share with other processes' requests
in Redis (generation events and cancel requests, login throttles, rate-limit counters, and the
invalidation of the caller and limits caches); without it, in its own memory. A tool reaches
Redis only to tell the servers of the limits it changed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Literal

from prometheus_client import CollectorRegistry

from genai_service.auth.caller_cache import CallerCache
from genai_service.auth.redis_throttle import redis_login_throttle
from genai_service.auth.throttle import LoginThrottle
from genai_service.conversations.replies import ConversationReplies
from genai_service.documents.runner import IngestionRunner
from genai_service.documents.storage import DocumentStorage
from genai_service.gateway.gateway import ModelGateway
from genai_service.gateway.guards import Guard
from genai_service.gateway.metrics import ModelCallMetrics
from genai_service.generations.events import EventLog, InMemoryEventLog
from genai_service.generations.orphans import STALE_GRACE
from genai_service.generations.redis_events import RedisEventLog
from genai_service.generations.runner import GenerationRunner
from genai_service.guards.budget import BudgetGuard
from genai_service.guards.charge_flusher import ChargeFlusher
from genai_service.guards.leases import ReservationLeases
from genai_service.guards.limits import StoredLimits
from genai_service.guards.limits_cache import CachedLimits
from genai_service.guards.rate_limits.guard import RateLimitGuard
from genai_service.guards.rate_limits.memory import InMemoryRateLimitStorage
from genai_service.guards.rate_limits.redis import RedisRateLimitStorage
from genai_service.guards.rate_limits.slot_leases import SlotLeases
from genai_service.inference.provider_metrics import ProviderMetrics
from genai_service.inference.registry import ModelRegistry
from genai_service.kit.db import create_engine, create_sessionmaker
from genai_service.kit.redis_client import SharedRedis
from genai_service.kit.redis_signals import RedisSignals
from genai_service.migrations import upgrade_database
from genai_service.retrieval.service import RetrievalService
from genai_service.retrieval.vector_store import QdrantVectorStore
from genai_service.runtime import Runtime
from genai_service.settings import Settings

Mode = Literal["server", "worker", "tool"]


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    mode: Mode = "server",
    models: ModelRegistry | None = None,
    registry: CollectorRegistry | None = None,
) -> AsyncIterator[Runtime]:
    """Open every part `mode` needs, in order, and close them in reverse, whatever happens.
    `registry`: where the model calls' metrics are counted and the providers report their own
    (the app's, served at `/metrics`)."""
    async with contextlib.AsyncExitStack() as stack:
        engine = create_engine(settings.sqlalchemy_url)
        stack.push_async_callback(engine.dispose)
        if settings.migrate_on_startup:
            await upgrade_database(engine)
        sessionmaker = create_sessionmaker(engine)
        models = models or ModelRegistry.from_settings(settings.inference)
        stack.push_async_callback(models.close)
        if registry is not None:
            provider_metrics = ProviderMetrics(models)
            registry.register(provider_metrics)
            stack.callback(registry.unregister, provider_metrics)
        redis: SharedRedis | None = None
        signals: RedisSignals | None = None
        if mode != "worker" and settings.redis.url is not None:
            # A tool only tells the servers of its changes: its signals are never started.
            redis = SharedRedis.from_settings(settings.redis)
            stack.push_async_callback(redis.close)
            signals = RedisSignals(redis, ping_seconds=settings.redis.timeout)
            stack.push_async_callback(signals.stop)
        rate_limits = InMemoryRateLimitStorage() if redis is None else RedisRateLimitStorage(redis)
        limits = CachedLimits(
            StoredLimits(sessionmaker, settings.limits),
            settings.limits.cache_seconds,
            redis=redis,
            signals=signals,
        )
        budget = BudgetGuard(
            sessionmaker, limits, settings.limits, one_writer=engine.dialect.name == "sqlite"
        )
        rate_limit_guard = RateLimitGuard(
            limits, rate_limits, lease_seconds=settings.limits.reservation_lease_seconds
        )
        if mode != "tool":
            # Before the runners: their calls settle while they close, then the last batch is
            # written and the allotments given back, then the leases stop.
            leases = ReservationLeases(budget)
            leases.start()
            stack.push_async_callback(leases.stop)
            slot_leases = SlotLeases(rate_limit_guard)
            slot_leases.start()
            stack.push_async_callback(slot_leases.stop)
            flusher = ChargeFlusher(budget)
            flusher.start()
            stack.push_async_callback(flusher.stop)
        # The rate limits first: a refusal costs less than a budget's reservation.
        guards: list[Guard] = [rate_limit_guard, budget]
        gateway = ModelGateway(models, guards, metrics=ModelCallMetrics(registry))
        events = _event_log(settings, redis, signals)
        caller_cache = CallerCache(
            settings.auth.caller_cache_seconds,
            signals=signals,
            redis=redis,
            on_forget=limits.forget,  # a user's role holds its default limits
        )
        login_throttle = (
            LoginThrottle.in_memory(settings.auth)
            if redis is None
            else redis_login_throttle(settings.auth, redis)
        )
        if signals is not None and mode == "server":
            # Every listener is registered by now: the event log's, the caller cache's and the
            # limits cache's.
            await signals.start()
        storage = DocumentStorage(settings.documents_dir)
        store: QdrantVectorStore | None = None
        if mode != "tool":
            # The vector store first: it is what fails to open (a folder held by another process).
            store = QdrantVectorStore.from_settings(settings)
            stack.push_async_callback(store.close)
            await storage.remove_stale_uploads()
        retriever: RetrievalService | None = None
        if store is not None and models.embedding_names():
            retriever = RetrievalService(gateway, store, settings.retrieval)
        generations: GenerationRunner | None = None
        if mode == "server":
            replies = ConversationReplies(sessionmaker, gateway, settings.conversations)
            generations = GenerationRunner(
                sessionmaker,
                events,
                settings.conversations,
                replies,
                shutdown_grace_seconds=settings.http.shutdown_grace_seconds,
            )
            stack.push_async_callback(generations.close)
            generations.start()
        ingestion: IngestionRunner | None = None
        ingests = mode == "worker" or (mode == "server" and settings.documents.run_ingestion)
        if ingests and retriever is not None and store is not None:
            ingestion = IngestionRunner(
                sessionmaker=sessionmaker,
                models=models,
                gateway=gateway,
                store=store,
                storage=storage,
                settings=settings.documents,
            )
            if mode == "server":
                ingestion.start()
                stack.push_async_callback(ingestion.stop)
        await _start_models(stack, models, mode)
        yield Runtime(
            settings=settings,
            engine=engine,
            sessionmaker=sessionmaker,
            models=models,
            gateway=gateway,
            limits=limits,
            rate_limits=rate_limits,
            budget=budget,
            events=events,
            login_throttle=login_throttle,
            caller_cache=caller_cache,
            storage=storage,
            vector_store=store,
            retriever=retriever,
            generations=generations,
            ingestion=ingestion,
            redis=redis,
            signals=signals,
        )


def _event_log(
    settings: Settings, redis: SharedRedis | None, signals: RedisSignals | None
) -> EventLog:
    retention = settings.conversations.event_retention_seconds
    if redis is None or signals is None:
        return InMemoryEventLog(retention)
    longest_run = settings.conversations.generation_deadline_seconds + STALE_GRACE.total_seconds()
    return RedisEventLog(
        redis, signals, retention_seconds=retention, running_seconds=longest_run + retention
    )


async def _start_models(
    stack: contextlib.AsyncExitStack, models: ModelRegistry, mode: Mode
) -> None:
    if mode == "worker":
        await models.embedding().start()
    elif mode == "server":
        # In the background: the server answers /healthz at once, and /readyz turns ready when
        # every model is loaded.
        loading = asyncio.create_task(models.start(), name="load-models")

        async def stop_loading() -> None:
            if not loading.done():
                loading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await loading

        stack.push_async_callback(stop_loading)
