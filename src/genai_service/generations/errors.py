"""Errors of the generations domain."""

from __future__ import annotations

from genai_service.kit.errors import ServiceUnavailable


class ServerShuttingDown(ServiceUnavailable):
    """The process is draining before it stops: it admits no new generation, and a load
    balancer sends the retry to another process."""

    title = "Server shutting down"
    slug = "server-shutting-down"
