"""The request id: accepted from the client when sane, else generated; visible to logs."""

from __future__ import annotations

import re
from contextvars import ContextVar

from starlette.requests import HTTPConnection

from genai_service.kit.random_ids import random_hex

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")

current_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def accept_or_generate(client_value: str | None) -> str:
    if client_value and _SANE_REQUEST_ID.fullmatch(client_value):
        return client_value
    return random_hex()


def request_id_of(connection: HTTPConnection) -> str:
    """The id the request-id middleware gave this request (generated if it never ran)."""
    state = connection.scope.setdefault("state", {})
    request_id = state.get("request_id")
    if not isinstance(request_id, str):
        request_id = accept_or_generate(connection.headers.get(REQUEST_ID_HEADER))
        state["request_id"] = request_id
    return request_id
