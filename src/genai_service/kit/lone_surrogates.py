"""Refuse request bodies whose JSON strings hold a lone UTF-16 surrogate.

JSON may spell a surrogate as an escape (`"\\ud800"`), and Python's `json` module turns a lone one
into a `str` that holds it (so does a raw UTF-8-encoded surrogate: bytes are decoded with
`surrogatepass`). Pydantic accepts that string as any other, and it fails much later, wherever
the text is encoded: a tokenizer, a database driver, a log sink — a 500 far from its cause.
Query strings, paths, headers and form fields are decoded with replacement characters and
cannot carry one; JSON bodies can.

The check is an app-wide dependency (`FastAPI(dependencies=...)`), so it runs for every route,
including those added later, whatever model the body is validated with: a new request model
cannot forget it. It answers the same validation problem as any invalid field (422, or 400 under
`/v1`), naming the field. It only reads a body FastAPI already parsed as JSON, and skips the
walk when the raw bytes cannot hold a surrogate at all.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import params
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import HTTPConnection, Request

# A `\uD800`-`\uDFFF` escape, or a UTF-8-encoded surrogate (ED A0..BF xx).
_MAYBE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
MESSAGE = "Input should be valid Unicode text: a lone UTF-16 surrogate is not a character"


def _takes_json_body(connection: HTTPConnection) -> bool:
    route = connection.scope.get("route")
    if not isinstance(route, APIRoute) or route.body_field is None:
        return False
    return not isinstance(route.body_field.field_info, params.Form)


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def find_lone_surrogate(document: Any) -> tuple[int | str, ...] | None:
    """The path to the first string (or object key) holding a lone surrogate, if any.

    Iterative, so a deeply nested document cannot exhaust the stack."""
    pending: list[tuple[tuple[int | str, ...], Any]] = [((), document)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            if not _is_text(value):
                return path
        elif isinstance(value, dict):
            for key, item in value.items():
                if not _is_text(key):
                    return (*path, key.encode("utf-8", "replace").decode())
                pending.append(((*path, key), item))
        elif isinstance(value, list):
            pending.extend(((*path, index), item) for index, item in enumerate(value))
    return None


async def reject_lone_surrogates(connection: HTTPConnection) -> None:
    """422 (400 under `/v1`) for a JSON body with a lone surrogate in any string."""
    if not isinstance(connection, Request) or not _takes_json_body(connection):
        return
    body = await connection.body()
    if not _MAYBE_SURROGATE.search(body):
        return
    try:
        document = await connection.json()  # parsed and kept by FastAPI already
    except (ValueError, RecursionError):
        return  # not JSON FastAPI could read: it has refused the body already
    path = find_lone_surrogate(document)
    if path is not None:
        raise RequestValidationError(
            [{"type": "string_unicode", "loc": ("body", *path), "msg": MESSAGE, "input": None}],
            body=document,
        )
