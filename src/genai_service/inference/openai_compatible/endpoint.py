"""One remote OpenAI-compatible server for one model name: its HTTP session, lifecycle, retries
and errors.

Requests go over aiohttp directly, the transport the OpenAI SDK itself used here. The SDK's
layers above it (request options, its HTTP client's URL and header objects, response wrappers)
took about 0.45 ms of CPU a call, 40 % of all genai-service spent on a call it forwards
(docs/benchmarks.md). What the SDK did for us is kept: failures are retried as it
retries them (connection failures, timeouts, 408, 409, 429 and 5xx; the server's `Retry-After`
up to `MAX_RETRY_AFTER_SECONDS`, else a backoff from 0.5 s doubling to 8 s, less up to a quarter
at random; `x-should-retry` obeyed), the key comes from `OPENAI_API_KEY` for OpenAI itself, and
replies are read as the SDK's types (`replies.py`).
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import json
import math
import os
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import aiohttp

from genai_service import __version__
from genai_service.inference.base import ChatMessage, ModelNotReady
from genai_service.inference.openai_compatible.event_data import MalformedStream, event_data
from genai_service.inference.openai_compatible.upstream_errors import (
    TRANSPORT_ERRORS,
    UpstreamErrors,
    UpstreamStatus,
)
from genai_service.settings import ProviderSettings

R = TypeVar("R")

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4
REPLY_PRIMING_TOKENS = 3
OPENAI_BASE_URL = "https://api.openai.com/v1"
KEYLESS_API_KEY = "unused"
"""Sent to servers configured without a key: some refuse a request without one."""
IDLE_CONNECTION_SECONDS = 4.0
"""How long an idle connection to a remote server is kept for the next request: less than the
5 s after which uvicorn (vLLM's server, most Python servers) and llama.cpp's server close one,
so that no request goes out on a connection the server is closing at that moment (a connection
error, a 502 without retries)."""
MAX_CONNECTIONS = 1000
"""Connections open to one remote server at most, as the OpenAI SDK's default."""
INITIAL_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 8.0
MAX_RETRY_AFTER_SECONDS = 60.0
"""The longest `Retry-After` waited for before a retry; a longer one fails the request now."""
MAX_ERROR_BODY_BYTES = 64 * 1024
"""The most of an error reply's body read: its message, not a page."""
MAX_TRAILER_BYTES = 64 * 1024
"""The most read after a stream's `[DONE]` to keep its connection for the next request."""
_RETRIED_STATUSES = {408, 409, 429}


def _retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The wait a server asks for: `retry-after-ms`, `retry-after` in seconds or as a date."""
    for header, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(header)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue
        return seconds if math.isfinite(seconds) else MAX_RETRY_AFTER_SECONDS + 1
    date = email.utils.parsedate_tz(headers.get("retry-after") or "")
    return None if date is None else email.utils.mktime_tz(date) - time.time()


def _retryable(failure: UpstreamStatus) -> bool:
    retry_after = _retry_after_seconds(failure.headers)
    if retry_after is not None and retry_after > MAX_RETRY_AFTER_SECONDS:
        return False
    should_retry = failure.headers.get("x-should-retry")
    if should_retry in ("true", "false"):
        return should_retry == "true"
    return failure.status in _RETRIED_STATUSES or failure.status >= 500


def _retry_delay(retries_done: int, headers: Mapping[str, str]) -> float:
    retry_after = _retry_after_seconds(headers)
    if retry_after is not None and 0 < retry_after <= MAX_RETRY_AFTER_SECONDS:
        return retry_after
    backoff = min(INITIAL_RETRY_SECONDS * 2.0**retries_done, MAX_RETRY_SECONDS)
    return backoff * (1 - 0.25 * random.random())  # noqa: S311  # nosec B311  # jitter


async def _status_failure(response: aiohttp.ClientResponse) -> UpstreamStatus:
    body = await response.content.read(MAX_ERROR_BODY_BYTES)
    return UpstreamStatus(response.status, body, response.headers.copy())


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def estimate_prompt_tokens(messages: Sequence[ChatMessage]) -> int:
    """About 4 characters per token plus the chat template's per-message overhead.

    Remote servers do not expose their tokenizer through the OpenAI API; the estimate is only used
    for budgets and context checks before the request, and the server's own usage figures replace
    it whenever it reports them.
    """
    return REPLY_PRIMING_TOKENS + sum(
        TOKENS_PER_MESSAGE + estimate_tokens(m.content) for m in messages
    )


class OpenAICompatibleEndpoint:
    """One remote server for one model name: its HTTP session, lifecycle, retries and errors."""

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        self.name = name
        self.remote_model = settings.model or name
        secret = settings.api_key.get_secret_value() if settings.api_key else None
        if secret is None and settings.base_url is None:
            secret = os.environ.get("OPENAI_API_KEY")
            if not secret:
                raise ValueError(
                    f"model {name!r}: OpenAI's API needs a key: set the provider's api_key "
                    "or OPENAI_API_KEY"
                )
        self.errors = UpstreamErrors(name, self.remote_model, secret)
        # A keyless server (vLLM, Ollama) never gets the OPENAI_API_KEY of the environment.
        api_key = secret or KEYLESS_API_KEY
        self._root = (settings.base_url or OPENAI_BASE_URL).rstrip("/")
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"genai-service/{__version__}",
        }
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=settings.timeout, sock_read=settings.timeout
        )
        self._max_retries = settings.max_retries
        self._session: aiohttp.ClientSession | None = None

    @property
    def ready(self) -> bool:
        return self._session is not None

    async def start(self) -> None:
        """No network call: a remote that is down fails requests (and falls back), not startup."""
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=MAX_CONNECTIONS, keepalive_timeout=IDLE_CONNECTION_SECONDS
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self._headers,
                timeout=self._timeout,
                # As the SDK's aiohttp transport: no proxy or netrc from the environment (their
                # lookups would take two trips to a worker thread on every request).
                trust_env=False,
            )

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise ModelNotReady(f"model {self.name!r} is not started")
        return self._session

    async def post(self, path: str, body: dict[str, Any]) -> bytes:
        """The body of the server's successful reply to `body` at `path` (`/chat/completions`)."""
        session, data = self._open_session(), json.dumps(body).encode()

        async def attempt() -> bytes:
            async with session.post(self._root + path, data=data) as response:
                if response.status >= 400:
                    raise await _status_failure(response)
                return await response.read()

        return await self._retrying(attempt)

    async def events(
        self, path: str, body: dict[str, Any]
    ) -> AsyncGenerator[tuple[bytes, bytes], None]:
        """The type and data of each server-sent event of the server's streamed reply. The
        request is retried until the reply begins; once it has, a failure is raised as one
        during the reply."""
        session, data = self._open_session(), json.dumps(body).encode()

        async def attempt() -> aiohttp.ClientResponse:
            response = await session.post(self._root + path, data=data)
            if response.status >= 400:
                try:
                    raise await _status_failure(response)
                finally:
                    response.release()
            return response

        response = await self._retrying(attempt)
        finished = False
        try:
            async for event in event_data(response.content.iter_any()):
                yield event
            # The rest of the body (the end of its chunked encoding), so that the connection
            # goes back to the pool for the next request.
            finished = not await response.content.read(MAX_TRAILER_BYTES)
        except TRANSPORT_ERRORS as exc:
            raise self.errors.of_transport(exc, during_reply=True) from exc
        except MalformedStream as exc:
            raise self.errors.of_reply(f"is not a stream of events: {exc}") from exc
        finally:
            if finished:
                response.release()
            else:
                response.close()

    async def _retrying(self, attempt: Callable[[], Awaitable[R]]) -> R:
        """`attempt`'s result; a failure the SDK retries is tried again up to `max_retries`
        times, after a pause; the last failure raised as our error."""
        for retries_done in itertools.count():
            try:
                return await attempt()
            except UpstreamStatus as failure:
                if retries_done >= self._max_retries or not _retryable(failure):
                    raise self.errors.of_status(failure) from None
                delay = _retry_delay(retries_done, failure.headers)
            except TRANSPORT_ERRORS as exc:
                if retries_done >= self._max_retries:
                    raise self.errors.of_transport(exc) from exc
                delay = _retry_delay(retries_done, {})
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover - itertools.count never ends
