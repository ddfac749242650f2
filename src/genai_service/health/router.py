from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import RedirectResponse

from genai_service import __version__
from genai_service.generations.errors import ServerShuttingDown
from genai_service.health.schemas import Health, Readiness
from genai_service.health.service import readiness_checks
from genai_service.kit.errors import ServiceUnavailable
from genai_service.runtime import RuntimeDep, SettingsDep
from genai_service.web_ui.router import UI_PATH

router = APIRouter(tags=["health"])


@router.get(
    "/",
    response_model=Health,
    response_model_exclude_none=True,
    responses={303: {"description": "A browser (`Accept: text/html`) is sent to the chat page"}},
)
async def root(
    settings: SettingsDep, accept: Annotated[str, Header()] = "application/json"
) -> Health | RedirectResponse:
    """The design source's health root: `{"status": "healthy"}`; in development, browsers are
    sent to the web chat page (which links the API docs)."""
    if not settings.is_production:
        if "text/html" in accept:
            return RedirectResponse(UI_PATH, status_code=303)
        return Health()
    return Health(name=settings.name, version=__version__)


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """Liveness: the process is up and serving."""
    return Health()


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"description": "A dependency is not ready"}},
)
async def readyz(runtime: RuntimeDep) -> Readiness:
    """Readiness: the database, the vector store and Redis (when configured) answer, and every
    model registered at start-up is loaded; never while the process drains before it stops."""
    if runtime.generations is not None and not runtime.generations.accepting:
        raise ServerShuttingDown("not ready: shutting down", retry_after=5)
    checks = await readiness_checks(
        runtime.engine, runtime.models, runtime.vector_store, runtime.redis, runtime.signals
    )
    failing = sorted(name for name, ok in checks.items() if not ok)
    if failing:
        error = ServiceUnavailable(f"not ready: {', '.join(failing)}", retry_after=5)
        error.extra["checks"] = checks
        raise error
    return Readiness(status="ready", checks=checks)
