"""`/ui`: the web chat page and its static files (HTML, CSS, JavaScript modules, vendored
libraries).

The page is public: it holds no data, and every call it makes to the API carries the user's own
credentials. Its Content-Security-Policy is set per route by the security-headers middleware.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

import genai_service

UI_PATH = "/ui"
STATIC_PATH = "/ui/static"
WEB_DIR = Path(genai_service.__file__).resolve().parent / "web"
REVALIDATE = {"Cache-Control": "no-cache"}


class RevalidatedStaticFiles(StaticFiles):
    """Static files that browsers revalidate on every use (a cheap `304` by ETag): after an
    upgrade, the page never runs a mix of new and cached modules."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(REVALIDATE)
        return response


router = APIRouter(tags=["web ui"], include_in_schema=False)
router.mount(STATIC_PATH, RevalidatedStaticFiles(directory=WEB_DIR), name="ui-static")


@router.api_route(UI_PATH, methods=["GET", "HEAD"])
async def chat_page() -> FileResponse:
    """The single page; it routes by the URL fragment (`#/chat/<id>`, `#/documents`, ...)."""
    return FileResponse(WEB_DIR / "index.html", headers=REVALIDATE)
