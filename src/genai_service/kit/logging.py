"""Loguru for every log line (ours, uvicorn's, the standard library's), with the request id."""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from typing import TYPE_CHECKING, Any, TextIO

from loguru import logger

from genai_service.kit.request_context import current_request_id

if TYPE_CHECKING:
    from loguru import Message, Record

_TEXT_FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "<cyan>{extra[request_id]}</cyan> {name}: <level>{message}</level>"
)
_QUIET_LOGGERS = ("uvicorn.access",)  # replaced by our access log
_SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.asgi")  # at the configured level
# An INFO line for every request an httpx client sends (the OpenAI SDK's, the CLI's): noise next
# to the access log and the provider errors (warnings). Shown at DEBUG.
_PER_CALL_LOGGERS = ("httpx", "httpx2")
# Their DEBUG lines carry SQL parameters (password hashes, token digests): never below INFO.
_PARAMETER_LOGGERS = ("aiosqlite",)
# Credentials in a query string (a WebSocket's `?token=`), as uvicorn logs request lines.
_QUERY_CREDENTIAL = re.compile(r"([?&](?:token|access_token|api_key)=)[^&\s\"']+", re.IGNORECASE)


def redact_query_credentials(text: str) -> str:
    return _QUERY_CREDENTIAL.sub(r"\1[redacted]", text)


class _InterceptHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        message = redact_query_credentials(record.getMessage())
        logger.opt(depth=6, exception=record.exc_info).log(level, message)


def _add_request_id(record: Record) -> None:
    record["extra"].setdefault("request_id", current_request_id.get() or "-")


def _json_sink(stream: TextIO) -> Any:
    def write(message: Message) -> None:
        record = message.record
        entry: dict[str, Any] = {
            "time": record["time"].isoformat(),
            "level": record["level"].name,
            "logger": record["name"],
            "message": record["message"],
            **record["extra"],
        }
        if record["exception"] is not None:
            entry["exception"] = "".join(_format_exception(record))
        stream.write(json.dumps(entry, default=str) + "\n")
        stream.flush()

    return write


def _format_exception(record: Record) -> list[str]:
    exc = record["exception"]
    if exc is None:
        return []
    return traceback.format_exception(exc.type, exc.value, exc.traceback)


def configure_logging(*, level: str, json_lines: bool, stream: TextIO = sys.stderr) -> None:
    logger.remove()
    logger.configure(patcher=_add_request_id)
    if json_lines:
        logger.add(_json_sink(stream), level=level.upper())
    else:
        logger.add(stream, level=level.upper(), format=_TEXT_FORMAT, backtrace=False)
    # The standard library filters at the same level as loguru, so records that would be dropped
    # are never built; uvicorn also adds its per-message trace middleware only at TRACE.
    threshold = logger.level(level.upper()).no
    logging.basicConfig(handlers=[_InterceptHandler()], level=threshold, force=True)
    for name in ("uvicorn", "uvicorn.error", "alembic", "sqlalchemy"):
        std_logger = logging.getLogger(name)
        std_logger.handlers = [_InterceptHandler()]
        std_logger.propagate = False
    for name in _SERVER_LOGGERS:  # a level left by an earlier uvicorn.Config(log_level=...) goes
        logging.getLogger(name).setLevel(logging.NOTSET)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).disabled = True
    for name in _PARAMETER_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.INFO, threshold))
    for name in _PER_CALL_LOGGERS:
        logging.getLogger(name).setLevel(threshold if threshold < logging.INFO else logging.WARNING)
