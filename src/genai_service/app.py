"""The app factory and its lifespan: pools and models opened at start-up, closed at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI
from loguru import logger
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from genai_service import __version__
from genai_service.api import api_router
from genai_service.auth.caller_cache import CallerCache
from genai_service.auth.throttle import LoginThrottle
from genai_service.documents.runner import IngestionRunner
from genai_service.documents.storage import DocumentStorage
from genai_service.generations.events import InMemoryEventLog
from genai_service.generations.runner import GenerationRunner
from genai_service.generations.sse import GENERATION_ID_HEADER
from genai_service.inference.registry import ModelRegistry
from genai_service.kit.db import create_engine, create_sessionmaker
from genai_service.kit.logging import configure_logging
from genai_service.kit.metrics import HttpMetrics, MetricsMiddleware
from genai_service.kit.middleware.access_log import RESPONSE_TIME_HEADER, AccessLogMiddleware
from genai_service.kit.middleware.body_limit import BodyLimitMiddleware
from genai_service.kit.middleware.cors import ProblemCORSMiddleware
from genai_service.kit.middleware.request_id import RequestIdMiddleware
from genai_service.kit.middleware.security_headers import SecurityHeadersMiddleware
from genai_service.kit.middleware.unhandled_errors import UnhandledErrorMiddleware
from genai_service.kit.openapi import install_error_responses
from genai_service.kit.problems import install_problem_handlers
from genai_service.kit.request_context import REQUEST_ID_HEADER
from genai_service.kit.request_text import reject_unstorable_text
from genai_service.kit.slash_redirect import RelativeSlashRedirect
from genai_service.migrations import upgrade_database
from genai_service.retrieval.service import RetrievalService
from genai_service.retrieval.vector_store import QdrantVectorStore
from genai_service.settings import Settings

UPLOAD_PATH = "/api/documents"
MULTIPART_OVERHEAD_BYTES = 64 * 1024


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    models: ModelRegistry = app.state.models
    engine = create_engine(settings.sqlalchemy_url)
    if settings.migrate_on_startup:
        await upgrade_database(engine)
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    # The vector store first: it is what fails to open (a folder held by another process).
    store = QdrantVectorStore.from_settings(settings)
    app.state.vector_store = store
    generations = GenerationRunner(
        app.state.sessionmaker, models, app.state.generation_events, settings.conversations
    )
    app.state.generation_runner = generations
    generations.start()
    # Without an embedding model there is nothing to search with: document turns and search get 503.
    app.state.source_retriever = (
        RetrievalService(models, store, settings.retrieval) if models.embedding_names() else None
    )
    storage = DocumentStorage(settings.documents_dir)
    await storage.remove_stale_uploads()
    ingestion: IngestionRunner | None = None
    if settings.documents.run_ingestion and models.embedding_names():
        ingestion = IngestionRunner(
            sessionmaker=app.state.sessionmaker,
            models=models,
            store=store,
            storage=storage,
            settings=settings.documents,
        )
        ingestion.start()
    app.state.ingestion_runner = ingestion
    # Models load in the background: the server answers /healthz at once and /readyz turns
    # ready when every model is loaded.
    loading = asyncio.create_task(models.start(), name="load-models")
    logger.info("{} {} started ({})", settings.name, __version__, settings.env.value)
    try:
        yield
    finally:
        if not loading.done():
            loading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loading
        await generations.close()
        if ingestion is not None:
            await ingestion.stop()
        await store.close()
        await models.close()
        await engine.dispose()
        logger.info("{} stopped", settings.name)


def create_app(settings: Settings | None = None, *, models: ModelRegistry | None = None) -> FastAPI:
    settings = settings or Settings()
    settings.prepare_data_dir()
    configure_logging(level=settings.log_level, json_lines=settings.json_logs)
    show_docs = settings.show_docs
    app = FastAPI(
        title=settings.name,
        version=__version__,
        summary="A self-hostable generative-AI backend.",
        lifespan=lifespan,
        docs_url="/docs" if show_docs else None,
        redoc_url="/redoc" if show_docs else None,
        openapi_url="/openapi.json" if show_docs else None,
        # Every route, including those added later, whatever its body model.
        dependencies=[Depends(reject_unstorable_text)],
        redirect_slashes=False,
    )
    app.router.default = RelativeSlashRedirect(app.router)
    app.state.settings = settings
    app.state.metrics = HttpMetrics()
    app.state.models = models or ModelRegistry.from_settings(settings.inference)
    app.state.login_throttle = LoginThrottle.in_memory(settings.auth)
    app.state.caller_cache = CallerCache(settings.auth.caller_cache_seconds)
    app.state.generation_events = InMemoryEventLog(settings.conversations.event_retention_seconds)
    install_problem_handlers(app)

    # Added innermost first: the request id wraps everything, so every response and log line has it.
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.http.max_body_bytes,
        # Uploads stream to disk, so they may be larger than other bodies (plus multipart framing).
        path_limits={UPLOAD_PATH: settings.documents.max_upload_bytes + MULTIPART_OVERHEAD_BYTES},
    )
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.is_production)
    app.add_middleware(
        ProblemCORSMiddleware,
        allow_origins=settings.cors.origins,
        allow_credentials=settings.cors.allow_credentials,
        allow_methods=settings.cors.allow_methods,
        allow_headers=settings.cors.allow_headers,
        expose_headers=[
            REQUEST_ID_HEADER,
            RESPONSE_TIME_HEADER,
            "Retry-After",
            GENERATION_ID_HEADER,
        ],
    )
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(RequestIdMiddleware)
    # Outermost: the client's address and scheme, believed from trusted proxies only.
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.http.forwarded_allow_ips)
    app.include_router(api_router)
    install_error_responses(app)
    return app
