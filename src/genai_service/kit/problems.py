"""Render every error as RFC 9457 problem details, or as OpenAI's error body under `/v1`."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from loguru import logger
from starlette.exceptions import HTTPException as StarletteHTTPException

from genai_service.kit.errors import AppError
from genai_service.kit.request_context import REQUEST_ID_HEADER, request_id_of

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:genai-service:problem:"
OPENAI_PATH_PREFIX = "/v1"
JSON_INVALID = "json_invalid"
"""The validation error type of a request body that is not valid JSON."""
_MISSING_TYPES = frozenset({"missing", "extra_forbidden"})
"""Errors about a field the body lacks or should not have: the last part names it although
it leads nowhere in the body."""
_MESSAGES = {
    "extra_forbidden": "unknown parameter: the API defines no such field here",
}
"""Clearer words for pydantic's messages, by error type."""

_OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


def _status_title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _slug(status: int) -> str:
    return _status_title(status).lower().replace(" ", "-")


def openai_error_code(slug: str) -> str:
    """OpenAI's spelling of a slug: `context_length_exceeded`, not `context-length-exceeded`.

    Clients branch on these codes (LangChain raises its context-overflow error only for
    `context_length_exceeded`), so under `/v1` they must be OpenAI's names.
    """
    return slug.replace("-", "_")


def openai_error_body(
    *,
    status: int,
    slug: str,
    detail: str,
    param: str | None = None,
    openai_type: str | None = None,
    openai_code: str | None = None,
) -> dict[str, Any]:
    """OpenAI's error object: a `/v1` response's body, or an event of a `/v1` stream that fails
    part-way (the official clients raise it as an `APIError`)."""
    return {
        "error": {
            "message": detail,
            "type": openai_type or _OPENAI_ERROR_TYPES.get(status, "server_error"),
            "param": param,
            "code": openai_code or openai_error_code(slug),
        },
    }


def problem_response(
    request: Request,
    *,
    status: int,
    title: str,
    slug: str,
    detail: str,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
    param: str | None = None,
    openai_type: str | None = None,
    openai_code: str | None = None,
) -> JSONResponse:
    """`openai_type` and `openai_code`: the error's own under `/v1`, where they differ from what
    its status and slug give (OpenAI's `insufficient_quota` is a 429 of its own type)."""
    request_id = request_id_of(request)
    all_headers = {**(headers or {}), REQUEST_ID_HEADER: request_id}
    if request.url.path.startswith(OPENAI_PATH_PREFIX):
        body = openai_error_body(
            status=status,
            slug=slug,
            detail=detail,
            param=param,
            openai_type=openai_type,
            openai_code=openai_code,
        )
        return JSONResponse(body, status_code=status, headers=all_headers)
    problem: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "request_id": request_id,
        **(extra or {}),
    }
    return ProblemResponse(problem, status_code=status, headers=all_headers)


async def app_error_handler(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, AppError):  # registered for AppError only
        raise exc
    return problem_response(
        request,
        status=exc.status_code,
        title=exc.title,
        slug=exc.slug,
        detail=exc.detail,
        headers=exc.headers,
        extra=exc.extra,
        param=exc.param,
        openai_type=exc.openai_type,
        openai_code=exc.openai_code,
    )


def _field_name(loc: tuple[int | str, ...], error_type: str, body: Any) -> str:
    """The dotted path of the invalid field; "" when the body is not JSON at all.

    For a body that does not parse, the location holds the character position of the JSON
    error, which is no field name. Inside a union, pydantic adds the member it tried (`str`,
    `list[int]`, a discriminator's tag) to the location; those parts name no field of the
    request, so only the parts that lead through the sent body are kept.
    """
    if error_type == JSON_INVALID:
        return ""
    parts = list(loc)
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        where, parts = parts[0], parts[1:]
        if where != "body" or body is None:
            return ".".join(str(part) for part in parts)
    kept: list[str] = []
    node = body
    for index, part in enumerate(parts):
        found, child = _child(node, part)
        if found:
            node = child
        elif index < len(parts) - 1 or error_type not in _MISSING_TYPES:
            continue  # a union member's name: not a field of the request
        kept.append(str(part))
    return ".".join(kept)


def _child(node: Any, part: int | str) -> tuple[bool, Any]:
    if isinstance(node, dict) and part in node:
        return True, node[part]
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return True, node[part]
    return False, None


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):  # registered for RequestValidationError only
        raise exc
    errors = [
        {
            "field": _field_name(tuple(error["loc"]), error["type"], exc.body),
            "location": str(error["loc"][0]) if error["loc"] else "body",
            "message": _MESSAGES.get(error["type"], error["msg"]),
            "type": error["type"],
        }
        for error in exc.errors()
    ]
    summary = "; ".join(f"{e['field'] or e['location']}: {e['message']}" for e in errors)
    on_openai_api = request.url.path.startswith(OPENAI_PATH_PREFIX)
    return problem_response(
        request,
        # OpenAI answers invalid parameters with 400; its SDKs map that to BadRequestError.
        status=400 if on_openai_api else 422,
        title="Validation failed",
        slug="validation-failed",
        detail=summary or "The request is not valid.",
        extra={"errors": errors},
        param=(errors[0]["field"] or None) if errors else None,
    )


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, StarletteHTTPException):  # registered for StarletteHTTPException only
        raise exc
    title = _status_title(exc.status_code)
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else title
    return problem_response(
        request,
        status=exc.status_code,
        title=title,
        slug=_slug(exc.status_code),
        detail=detail,
        headers=dict(exc.headers or {}),
    )


async def unhandled_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """A 500 that says nothing about the cause; the traceback goes to the log, under the request
    id the client is told to quote (bound here, as this may run outside the request's context)."""
    logger.bind(request_id=request_id_of(request)).opt(exception=exc).error(
        "unhandled error on {} {}", request.method, request.url.path
    )
    return problem_response(
        request,
        status=500,
        title="Internal server error",
        slug="internal-server-error",
        detail="An unexpected error occurred. Quote the request id when reporting it.",
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, app_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(Exception, unhandled_error_handler)
