"""One error hierarchy for the whole service, rendered as RFC 9457 problem details.

Services raise `AppError` subclasses; they never raise `HTTPException`. The handlers in
`kit.problem_handlers` turn every error into `application/problem+json` (or OpenAI's
error body under `/v1`).
"""

from __future__ import annotations

from typing import Any, ClassVar


class AppError(Exception):
    """An error a client can act on. `detail` is shown to the client; keep secrets out of it."""

    status_code: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"
    slug: ClassVar[str] = "bad-request"
    openai_type: ClassVar[str | None] = None
    """OpenAI's error `type` under `/v1`; `None`: the one OpenAI gives the status code."""
    openai_code: ClassVar[str | None] = None
    """OpenAI's error `code` under `/v1`; `None`: the slug in OpenAI's spelling."""

    def __init__(
        self,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        param: str | None = None,
    ) -> None:
        """`param`: the request field at fault, for OpenAI's error body under `/v1`."""
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra or {}
        self.param = param


class BadRequest(AppError):
    pass


class Unauthorized(AppError):
    status_code = 401
    title = "Unauthorized"
    slug = "unauthorized"


class Forbidden(AppError):
    status_code = 403
    title = "Forbidden"
    slug = "forbidden"


class NotFound(AppError):
    status_code = 404
    title = "Not found"
    slug = "not-found"


class Conflict(AppError):
    status_code = 409
    title = "Conflict"
    slug = "conflict"


class Gone(AppError):
    status_code = 410
    title = "Gone"
    slug = "gone"


class PayloadTooLarge(AppError):
    status_code = 413
    title = "Payload too large"
    slug = "payload-too-large"


class UnsupportedMediaType(AppError):
    status_code = 415
    title = "Unsupported media type"
    slug = "unsupported-media-type"


class TooManyRequests(AppError):
    status_code = 429
    title = "Too many requests"
    slug = "too-many-requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class ServiceUnavailable(AppError):
    status_code = 503
    title = "Service unavailable"
    slug = "service-unavailable"

    def __init__(self, detail: str, *, retry_after: int | None = None) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        super().__init__(detail, headers=headers)


class BadGateway(AppError):
    status_code = 502
    title = "Bad gateway"
    slug = "bad-gateway"


class GatewayTimeout(AppError):
    status_code = 504
    title = "Gateway timeout"
    slug = "gateway-timeout"
