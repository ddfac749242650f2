"""Refusals of the rate limits: `429` with `Retry-After`, in OpenAI's terms under `/v1`; and `503`
while the counters shared by the server processes cannot be reached."""

from __future__ import annotations

from typing import Any

from genai_service.kit.errors import AppError
from genai_service.kit.redis_client import RedisUnavailable


class RateLimited(AppError):
    """A limit on requests or calls in flight is reached; `extra` names it."""

    status_code = 429
    title = "Rate limit reached"
    slug = "rate-limited"
    openai_type = "requests"
    openai_code = "rate_limit_exceeded"

    def __init__(self, detail: str, *, headers: dict[str, str], extra: dict[str, Any]) -> None:
        super().__init__(detail, headers=headers, extra=extra)


class TokenRateLimited(RateLimited):
    """The tokens per minute are reached (or a call holds more than they ever allow)."""

    openai_type = "tokens"


class RateLimitsUnavailable(RedisUnavailable):
    """The shared rate-limit counters cannot be reached: no call is admitted (never counted by
    this process alone), and the client may send it again shortly."""

    title = "Rate limits unavailable"
    slug = "rate-limits-unavailable"
