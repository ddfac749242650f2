"""What a remote OpenAI-compatible server's failures mean to our callers: our errors for its
error replies (by status, with its message where the client can act on it) and for a broken or
silent connection."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

import aiohttp
from loguru import logger

from genai_service.inference.base import (
    GenerationTimeout,
    ModelOverloaded,
    PromptTooLong,
    ProviderError,
)
from genai_service.kit.errors import AppError, BadRequest

_CONTEXT_LENGTH_CODES = {"context_length_exceeded", "context-length-exceeded"}
_CONTEXT_LENGTH_PHRASES = ("context length", "context window", "maximum context", "too many tokens")
MESSAGE_CHARS = 2_000
"""The most of an upstream's error message passed on: a server may answer with a whole page."""


class UpstreamStatus(Exception):
    """An error reply of the upstream: its status, body and headers."""

    def __init__(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        super().__init__(f"status {status}")
        self.status = status
        self.body = body
        self.headers = headers


def _message_and_code(reply: UpstreamStatus) -> tuple[str, str]:
    """The message and code of an error body in OpenAI's shape (`{"error": {"message", "code"}}`),
    or of the flat shapes other servers use; else the body's text."""
    text = reply.body.decode(errors="replace")
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            message, code = error.get("message"), error.get("code")
            if isinstance(message, str) and message:
                return message[:MESSAGE_CHARS], code if isinstance(code, str) else ""
    return f"status {reply.status}: {text[:MESSAGE_CHARS]}", ""


class UpstreamErrors:
    """Our errors for one remote model's failures; its key never appears in them."""

    def __init__(self, name: str, remote_model: str, secret: str | None) -> None:
        self._prefix = f"model {name!r}"
        self._remote_model = remote_model
        self._secret = secret

    def _redacted(self, message: str) -> str:
        return message.replace(self._secret, "***") if self._secret else message

    def of_status(self, reply: UpstreamStatus) -> AppError:
        """Our error for an error reply; only client mistakes (4xx) keep the upstream message."""
        message, code = _message_and_code(reply)
        message = self._redacted(message)
        logger.warning("{}: provider error {}: {}", self._prefix, reply.status, message)
        prefix, status = self._prefix, reply.status
        if status == 429:
            return ModelOverloaded(
                f"{prefix} is overloaded upstream; retry later",
                retry_after=_retry_after(reply.headers),
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
                f"{prefix}: the provider does not serve model {self._remote_model!r} (404)"
            )
        lowered = message.lower()
        if code.replace("-", "_") in _CONTEXT_LENGTH_CODES or any(
            phrase in lowered for phrase in _CONTEXT_LENGTH_PHRASES
        ):
            return PromptTooLong(message)
        return BadRequest(message)

    def of_transport(self, exc: Exception, *, during_reply: bool = False) -> AppError:
        """Our error for a connection that failed, broke off or went silent. `during_reply`: it
        broke a reply the provider had begun to send."""
        logger.warning("{}: provider unreachable: {!r}", self._prefix, exc)
        prefix = self._prefix
        if isinstance(exc, TimeoutError):  # aiohttp's connect and read timeouts included
            if during_reply:
                return GenerationTimeout(f"{prefix}: the provider stopped sending the reply")
            return GenerationTimeout(f"{prefix}: the provider did not answer in time")
        if during_reply:
            return ProviderError(
                f"{prefix}: the connection to the provider broke off during the reply"
            )
        return ProviderError(f"{prefix}: cannot reach the provider")

    def of_stream(self, message: str) -> ProviderError:
        """An error the provider sent as an event of its stream, after its `200`."""
        message = self._redacted(message[:MESSAGE_CHARS])
        logger.warning("{}: provider error in its stream: {}", self._prefix, message)
        return ProviderError(f"{self._prefix}: the provider failed: {message}")

    def of_reply(self, problem: str) -> ProviderError:
        """The provider answered with success, but not with what the API promises."""
        logger.warning("{}: provider reply unreadable: {}", self._prefix, problem)
        return ProviderError(f"{self._prefix}: the provider's reply {problem}")


TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError)
"""What a request to a remote server raises when the connection fails, breaks or goes silent."""


def _retry_after(headers: Mapping[str, str]) -> int | None:
    value = headers.get("retry-after")
    try:
        return max(1, math.ceil(float(value))) if value else None
    except ValueError:  # an HTTP date: not worth parsing for a hint
        return None
