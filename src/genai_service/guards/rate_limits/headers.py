"""OpenAI's rate-limit response headers: where a caller stands in its requests and tokens per
minute, so clients written for OpenAI pace themselves unchanged."""

from __future__ import annotations

import math

from genai_service.guards.rate_limits.storage import Window, WindowState

RATE_LIMIT_HEADERS = tuple(
    f"x-ratelimit-{what}-{kind}"
    for kind in ("requests", "tokens")
    for what in ("limit", "remaining", "reset")
)
"""Every header a model call under `/v1` may carry (exposed to browsers by CORS)."""
RETRY_AFTER_MS = "retry-after-ms"
"""OpenAI's finer `Retry-After`, which its SDKs read first."""


def duration(seconds: float) -> str:
    """A duration as OpenAI (and Go) write it: `0s`, `20ms`, `1s`, `8.64s`, `6m0s`, `1h2m3s`."""
    millis = max(0, math.ceil(seconds * 1000 - 1e-6))
    if millis == 0:
        return "0s"
    if millis < 1000:
        return f"{millis}ms"
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, fraction = divmod(rest, 1000)
    text = f"{whole}.{fraction:03d}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    if minutes:
        return f"{minutes}m{text}"
    return text


def window_headers(kind: str, window: Window, state: WindowState) -> dict[str, str]:
    """The three headers of one kind (`requests` or `tokens`) from the window that binds it."""
    return {
        f"x-ratelimit-limit-{kind}": str(window.limit),
        f"x-ratelimit-remaining-{kind}": str(state.remaining),
        f"x-ratelimit-reset-{kind}": duration(state.full_in),
    }


def retry_headers(seconds: float) -> dict[str, str]:
    """`Retry-After` in whole seconds (at least 1, as HTTP wants), and OpenAI's in ms."""
    return {
        "Retry-After": str(max(1, math.ceil(seconds))),
        RETRY_AFTER_MS: str(max(1, math.ceil(seconds * 1000))),
    }
