"""The trailing-slash redirect, with a relative `Location`.

Starlette redirects `/api/documents/` to `/api/documents` itself, but builds an absolute URL
from the request's `Host` header: a forged `Host` makes the server hand out redirects to any
site (a cache in front of it may keep one for everyone). A relative reference is resolved by
the client against the URL it asked for, so it needs no host and can never name another.
"""

from __future__ import annotations

from starlette.responses import RedirectResponse
from starlette.routing import Match, Router
from starlette.types import Receive, Scope, Send


class RelativeSlashRedirect:
    """The router's fallback: a 307 to the path with its trailing slash toggled when that path
    has a route, else the router's 404. Use with `redirect_slashes=False`."""

    def __init__(self, router: Router) -> None:
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if scope["type"] == "http" and path != "/":
            other = path.rstrip("/") if path.endswith("/") else path + "/"
            other_scope = {**scope, "path": other}
            if any(route.matches(other_scope)[0] is not Match.NONE for route in self.router.routes):
                # One leading slash: "//host/..." would be a reference to another host.
                location = "/" + (scope.get("root_path", "") + other).lstrip("/")
                query = scope.get("query_string", b"").decode("latin-1")
                response = RedirectResponse(location + (f"?{query}" if query else ""))
                await response(scope, receive, send)
                return
        await self.router.not_found(scope, receive, send)
