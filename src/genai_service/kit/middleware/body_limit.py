from __future__ import annotations

from collections.abc import Mapping

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from genai_service.kit.problems import problem_response

_DETAIL = "The request body is larger than the {limit} bytes this server accepts."


class BodyLimitMiddleware:
    """Refuse bodies over `max_bytes` with a 413 problem before they are read into memory.

    A declared `Content-Length` over the limit is refused before any byte is read; a chunked
    body is counted as it arrives and refused as soon as it passes the limit.
    """

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, path_limits: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = dict(path_limits or {})
        """Paths (exact) with their own limit, such as an upload route that streams to disk."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.path_limits.get(scope["path"], self.max_bytes)
        detail = _DETAIL.format(limit=max_bytes)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            response = problem_response(
                Request(scope),
                status=413,
                title="Content Too Large",
                slug="content-too-large",
                detail=detail,
            )
            await response(scope, receive, send)
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise HTTPException(status_code=413, detail=detail)
            return message

        await self.app(scope, counted_receive, send)
