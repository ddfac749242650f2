"""One remote OpenAI-compatible server for one model name: its SDK client, lifecycle, errors."""

from __future__ import annotations

import math
from collections.abc import Sequence

import aiohttp
import httpx2
import openai
from loguru import logger

from genai_service.inference.base import (
    ChatMessage,
    GenerationTimeout,
    ModelNotReady,
    ModelOverloaded,
    PromptTooLong,
    ProviderError,
)
from genai_service.inference.openai_compatible.sdk_client import CompiledValidationClient
from genai_service.kit.errors import AppError, BadRequest
from genai_service.settings import ProviderSettings

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4
REPLY_PRIMING_TOKENS = 3
KEYLESS_API_KEY = "unused"
"""Sent to servers configured without a key: the SDK refuses to run without one."""
IDLE_CONNECTION_SECONDS = 4.0
"""How long an idle connection to a remote server is kept for the next request: less than the
5 s after which uvicorn (vLLM's server, most Python servers) and llama.cpp's server close one.
The SDK's own default is those same 5 s, so a request could go out on a connection the server
was closing at that moment, and fail as a connection error (a 502 without retries)."""
UPSTREAM_CONNECTION_LIMITS = httpx2.Limits(
    max_connections=1000, max_keepalive_connections=100, keepalive_expiry=IDLE_CONNECTION_SECONDS
)
"""The SDK's default pool sizes, with idle connections kept `IDLE_CONNECTION_SECONDS`."""
_CONTEXT_LENGTH_CODES = {"context_length_exceeded", "context-length-exceeded"}
_CONTEXT_LENGTH_PHRASES = ("context length", "context window", "maximum context", "too many tokens")


def _timed_out(exc: openai.OpenAIError) -> bool:
    """Whether the SDK's error is a timeout. The SDK's aiohttp transport reports every
    connection error as a timeout (a refused connection too); the aiohttp error it wraps tells
    which it was."""
    if not isinstance(exc, openai.APITimeoutError):
        return False
    cause = exc.__cause__
    while cause is not None:
        if isinstance(cause, TimeoutError):  # aiohttp's read and connect timeouts included
            return True
        if isinstance(cause, aiohttp.ClientConnectionError):
            return False
        cause = cause.__cause__
    return True


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
    """One remote server for one model name: its SDK client, its lifecycle and its errors."""

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        self.name = name
        self.remote_model = settings.model or name
        self._settings = settings
        self._secret = settings.api_key.get_secret_value() if settings.api_key else None
        self._client: openai.AsyncOpenAI | None = self._new_client()
        self._started = False

    def _new_client(self) -> openai.AsyncOpenAI:
        api_key = self._secret
        if api_key is None and self._settings.base_url is not None:
            # A keyless server (vLLM, Ollama): never send it the OPENAI_API_KEY of the environment.
            api_key = KEYLESS_API_KEY
        try:
            return CompiledValidationClient(
                base_url=self._settings.base_url,
                api_key=api_key,
                timeout=self._settings.timeout,
                max_retries=self._settings.max_retries,
                http_client=openai.DefaultAioHttpClient(limits=UPSTREAM_CONNECTION_LIMITS),
            )
        except openai.OpenAIError as exc:
            raise ValueError(f"model {self.name!r}: {exc}") from exc

    @property
    def ready(self) -> bool:
        return self._started

    async def start(self) -> None:
        """No network call: a remote that is down fails requests (and falls back), not startup."""
        if self._client is None:
            self._client = self._new_client()
        self._started = True

    async def close(self) -> None:
        client, self._client, self._started = self._client, None, False
        if client is not None:
            await client.close()

    def client(self) -> openai.AsyncOpenAI:
        if not self._started or self._client is None:
            raise ModelNotReady(f"model {self.name!r} is not started")
        return self._client

    def translate(self, exc: openai.OpenAIError, *, during_reply: bool = False) -> AppError:
        """Our error for an SDK error; only client mistakes (4xx) keep the upstream message.
        `during_reply`: the error broke a reply the provider had begun to stream."""
        message = self._upstream_message(exc)
        logger.warning("model {!r}: provider error {}: {}", self.name, type(exc).__name__, message)
        prefix = f"model {self.name!r}"
        if _timed_out(exc):
            if during_reply:
                return GenerationTimeout(f"{prefix}: the provider stopped sending the reply")
            return GenerationTimeout(f"{prefix}: the provider did not answer in time")
        if isinstance(exc, openai.APIConnectionError):
            if during_reply:
                return ProviderError(
                    f"{prefix}: the connection to the provider broke off during the reply"
                )
            return ProviderError(f"{prefix}: cannot reach the provider")
        if not isinstance(exc, openai.APIStatusError):
            return ProviderError(f"{prefix}: the provider failed: {message}")
        status = exc.status_code
        if status == 429:
            return ModelOverloaded(
                f"{prefix} is overloaded upstream; retry later", retry_after=_retry_after(exc)
            )
        if status == 408:
            return GenerationTimeout(f"{prefix}: the provider timed out")
        if status >= 500:
            return ProviderError(f"{prefix}: the provider failed with status {status}")
        if status in {401, 403}:
            # Our credentials, not the client's request: the client cannot fix it.
            return ProviderError(f"{prefix}: the provider refused our credentials ({status})")
        if status == 404:
            return ProviderError(
                f"{prefix}: the provider does not serve model {self.remote_model!r} (404)"
            )
        code = exc.code.replace("-", "_") if exc.code else ""
        lowered = message.lower()
        if code in _CONTEXT_LENGTH_CODES or any(p in lowered for p in _CONTEXT_LENGTH_PHRASES):
            return PromptTooLong(message)
        return BadRequest(message)

    def _upstream_message(self, exc: openai.OpenAIError) -> str:
        body = exc.body if isinstance(exc, openai.APIError) else None
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, str) or not message:
            message = exc.message if isinstance(exc, openai.APIError) else str(exc)
        if self._secret:
            message = message.replace(self._secret, "***")
        return message


def _retry_after(exc: openai.APIStatusError) -> int | None:
    value = exc.response.headers.get("retry-after")
    try:
        return max(1, math.ceil(float(value))) if value else None
    except ValueError:  # an HTTP date: not worth parsing for a hint
        return None
