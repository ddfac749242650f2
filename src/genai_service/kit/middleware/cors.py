from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from genai_service.kit.problems import problem_response

_KEPT_HEADERS = ("vary", "access-control-allow-methods", "access-control-max-age")


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS middleware, with its refused preflights as problems.

    Starlette answers a preflight it refuses with a `text/plain` 400 before any handler runs;
    this one sends the same refusal as `application/problem+json`, like every other error.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "OPTIONS":
            await super().__call__(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if "origin" not in headers or "access-control-request-method" not in headers:
            await super().__call__(scope, receive, send)
            return
        response = self.preflight_response(request_headers=headers)
        if response.status_code < 400:
            await response(scope, receive, send)
            return
        refused = bytes(response.body).decode().removeprefix("Disallowed CORS ")
        problem = problem_response(
            Request(scope),
            status=response.status_code,
            title="CORS preflight refused",
            slug="cors-preflight-refused",
            detail=f"The server's CORS policy does not allow this request's {refused}.",
            headers={k: v for k, v in response.headers.items() if k in _KEPT_HEADERS},
        )
        await problem(scope, receive, send)
