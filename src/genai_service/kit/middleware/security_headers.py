from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_API_CSP = "default-src 'none'; frame-ancestors 'none'"
# Swagger UI and ReDoc load their assets from a CDN, so the docs pages get no policy of their own.
_DOCS_PREFIXES = ("/docs", "/redoc")
# The web chat page (`/ui`): its own modules, stylesheet and icon, and calls to its own API; no
# inline script or style, no eval. Its only HTML sink is DOMPurify, whose Trusted Types policy
# (named `dompurify`) is the one allowed to create HTML: any other `innerHTML` write throws.
_UI_PATH = "/ui"
_UI_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "require-trusted-types-for 'script'; trusted-types dompurify"
)


def content_security_policy(path: str) -> str | None:
    """The policy of a route: `None` for the docs pages, the page's own for `/ui`, else none
    allowed at all (JSON, event streams and static files need nothing)."""
    if path == _UI_PATH:
        return _UI_CSP
    if path.startswith(_DOCS_PREFIXES):
        return None
    return _API_CSP


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = content_security_policy(scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
                if policy is not None:
                    headers.setdefault("Content-Security-Policy", policy)
                if self.hsts:
                    headers.setdefault("Strict-Transport-Security", "max-age=31536000")
            await send(message)

        await self.app(scope, receive, send_with_headers)
