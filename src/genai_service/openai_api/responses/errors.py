from __future__ import annotations

from genai_service.kit.errors import BadRequest, NotFound


class ResponseNotFound(NotFound):
    """No stored response of this caller has the id: never stored, deleted, or someone else's."""

    title = "Response not found"
    slug = "response-not-found"


class StreamingNotSupported(BadRequest):
    title = "Streaming not supported"
    slug = "unsupported-parameter"
