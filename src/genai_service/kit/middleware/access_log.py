from __future__ import annotations

import time

from loguru import logger
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

RESPONSE_TIME_HEADER = "X-Response-Time"


class AccessLogMiddleware:
    """`X-Response-Time` (time to the first byte) and one access-log line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_timed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                elapsed_ms = (time.perf_counter() - started) * 1000
                MutableHeaders(scope=message)[RESPONSE_TIME_HEADER] = f"{elapsed_ms:.1f}ms"
            await send(message)

        try:
            await self.app(scope, receive, send_timed)
        finally:
            duration_ms = round((time.perf_counter() - started) * 1000, 1)
            client = scope.get("client")
            logger.bind(
                access=True,
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=duration_ms,
                client=client[0] if client else None,
            ).info("{} {} {} {}ms", scope["method"], scope["path"], status, duration_ms)
