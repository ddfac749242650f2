"""The app factory: routes, middleware and error handlers, and a lifespan that opens the runtime."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI
from loguru import logger
from starlette.types import Lifespan
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from genai_service import __version__
from genai_service.api import ROUTERS
from genai_service.auth.dependencies import document_password_flow
from genai_service.composition import open_runtime
from genai_service.generations.sse import GENERATION_ID_HEADER
from genai_service.guards.rate_limits.headers import RATE_LIMIT_HEADERS, RETRY_AFTER_MS
from genai_service.inference.registry import ModelRegistry
from genai_service.kit.exit_signals import on_exit_signal
from genai_service.kit.logging import configure_logging
from genai_service.kit.metrics import HttpMetrics, MetricsMiddleware, metrics_router
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
from genai_service.runtime import RUNTIME_STATE, Runtime
from genai_service.settings import Settings

UPLOAD_PATH = "/api/documents"
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def lifespan_of(
    settings: Settings, models: ModelRegistry | None, metrics: HttpMetrics
) -> Lifespan[FastAPI]:
    """The app's lifespan: the runtime (`composition.open_runtime`) open while the app serves;
    its model calls are counted in the app's metrics registry."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opening = open_runtime(settings, mode="server", models=models, registry=metrics.registry)
        async with opening as runtime:
            setattr(app.state, RUNTIME_STATE, runtime)
            logger.info("{} {} started ({})", settings.name, __version__, settings.env.value)
            # What startup built (modules, models, the runtime) lives as long as the server: the
            # garbage collector stops walking it at every full collection. (No collection first:
            # it would hold the event loop, and every thread of the process, for as long as the
            # heap takes to walk.)
            gc.freeze()
            try:
                with on_exit_signal(lambda: begin_drain(runtime)):
                    yield
            finally:
                gc.unfreeze()
                delattr(app.state, RUNTIME_STATE)
        logger.info("{} stopped", settings.name)

    return lifespan


def begin_drain(runtime: Runtime) -> None:
    """The process was told to stop: admit no new turns, and let running ones finish within the
    grace period (`http.shutdown_grace_seconds`)."""
    logger.info("shutting down: draining")
    if runtime.generations is not None:
        runtime.generations.drain()


def create_app(settings: Settings | None = None, *, models: ModelRegistry | None = None) -> FastAPI:
    settings = settings or Settings()
    settings.prepare_data_dir()
    configure_logging(level=settings.log_level, json_lines=settings.json_logs)
    show_docs = settings.show_docs
    metrics = HttpMetrics()
    app = FastAPI(
        title=settings.name,
        version=__version__,
        summary="A self-hostable generative-AI backend.",
        lifespan=lifespan_of(settings, models, metrics),
        docs_url="/docs" if show_docs else None,
        redoc_url="/redoc" if show_docs else None,
        openapi_url="/openapi.json" if show_docs else None,
        # Every route, including those added later, whatever its body model.
        dependencies=[Depends(reject_unstorable_text)],
        redirect_slashes=False,
    )
    app.router.default = RelativeSlashRedirect(app.router)
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
            RETRY_AFTER_MS,
            *RATE_LIMIT_HEADERS,
            GENERATION_ID_HEADER,
        ],
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(RequestIdMiddleware)
    # Outermost: the client's address and scheme, believed from trusted proxies only.
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.http.forwarded_allow_ips)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(metrics_router(metrics))
    install_error_responses(app, document_password_flow)
    return app
