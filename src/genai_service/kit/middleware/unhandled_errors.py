from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from genai_service.kit.problems import unhandled_error_handler


class UnhandledErrorMiddleware:
    """Answer an exception no handler took with a 500 problem, logged once with the request id.

    Left alone, such an exception reaches Starlette's outermost `ServerErrorMiddleware`, which
    answers the 500 and then raises the exception again for the server: the request-id context is
    gone by then, so uvicorn logs a second traceback under no id, and because the application
    failed after it had answered, uvicorn closes the keep-alive connection. Installed innermost
    (inside the request id, access log and metrics), this answers and returns normally, so the
    connection stays open. An exception after the response started is raised on: the server has
    to cut a response that cannot be finished.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception as exc:
            if started:
                raise
            response = await unhandled_error_handler(Request(scope), exc)
            await response(scope, receive, send)
