"""Refusals of the rate limits: `429` with `Retry-After`, in OpenAI's terms under `/v1`."""

from __future__ import annotations

from typing import Any

from genai_service.kit.errors import AppError


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
