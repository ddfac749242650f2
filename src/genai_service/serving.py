"""How uvicorn serves the app: the options `genai-service serve` passes, in one place.

uvicorn answers a request it cannot parse (a malformed request line or header, a header block
too large) itself, before the app sees anything, with a `text/plain` 400 and a closed
connection. The protocol classes below make that answer an RFC 9457 problem like every other:
it is the one hook uvicorn offers (`send_400_response`, called from its parser's error path,
with either parser; the classes live at module level so `--workers` can hand them to its
processes). Nothing else is known about such a request — not its path, nor a request id the
client sent — so the problem has no `instance`, and a fresh request id.
"""

from __future__ import annotations

import json
import math
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from genai_service.kit.problems import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_PREFIX
from genai_service.kit.request_context import REQUEST_ID_HEADER, accept_or_generate

MALFORMED_DETAIL = "The server could not parse this HTTP request."
DEFAULT_SHUTDOWN_GRACE_SECONDS = 30.0
STORE_MARGIN_SECONDS = 10
"""Past the grace period, what uvicorn still waits for: the replies of generations stopped at
its end being stored, and their streams' final events sent."""


def malformed_request_problem() -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The headers and body of the 400 answered to a request that is not valid HTTP/1.1."""
    request_id = accept_or_generate(None)
    body = json.dumps(
        {
            "type": PROBLEM_TYPE_PREFIX + "malformed-request",
            "title": "Bad request",
            "status": 400,
            "detail": MALFORMED_DETAIL,
            "request_id": request_id,
        }
    ).encode()
    headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        (REQUEST_ID_HEADER.lower().encode(), request_id.encode()),
        (b"connection", b"close"),
    ]
    return headers, body


class ProblemH11Protocol(H11Protocol):
    def send_400_response(self, msg: str) -> None:
        headers, body = malformed_request_problem()
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()


class ProblemHttpToolsProtocol(HttpToolsProtocol):
    def send_400_response(self, msg: str) -> None:
        headers, body = malformed_request_problem()
        lines = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in [*self.server_state.default_headers, *headers]:
            lines.append(name + b": " + value + b"\r\n")
        self.transport.write(b"".join([*lines, b"\r\n", body]))
        self.transport.close()


def server_options(
    shutdown_grace_seconds: float = DEFAULT_SHUTDOWN_GRACE_SECONDS,
) -> dict[str, Any]:
    """uvicorn options for this app (besides host, port, workers and reload)."""
    return {
        # uvicorn's own choice (httptools, which uvicorn[standard] installs), answering problems.
        "http": ProblemHttpToolsProtocol,
        # The app reads forwarded headers itself, from GENAI_HTTP__FORWARDED_ALLOW_IPS (so the
        # same trust applies under any server); uvicorn's own reading would trust loopback.
        "proxy_headers": False,
        "log_config": None,  # logging is configured by the app (loguru, JSON in production)
        "access_log": False,  # replaced by the app's access log, which has the request id
        # Connections still open past the drain (http.shutdown_grace_seconds) are cut.
        "timeout_graceful_shutdown": math.ceil(shutdown_grace_seconds) + STORE_MARGIN_SECONDS,
    }
