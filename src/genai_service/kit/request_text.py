"""Refuse request text no part of the service can store: lone UTF-16 surrogates and NUL.

JSON may spell a surrogate as an escape (`"\\ud800"`), and Python's `json` module turns a lone one
into a `str` that holds it (so does a raw UTF-8-encoded surrogate: bytes are decoded with
`surrogatepass`). A NUL character (`"\\u0000"` in JSON, `%00` in a query string or a form) is
valid Unicode, but PostgreSQL's text columns cannot hold it. Pydantic accepts both as any other
string, and they fail much later, wherever the text is encoded or stored: a tokenizer, the
database driver, a log sink — a 500 far from its cause.

The check is an app-wide dependency (`FastAPI(dependencies=...)`), so it runs for every route,
including those added later, whatever model the body is validated with: a new request model
cannot forget it. It answers the same validation problem as any invalid field (422, or 400 under
`/v1`), naming the field. It reads what FastAPI has parsed already (the JSON body, the form),
and skips the walk of a JSON body whose bytes cannot hold such a character at all. Uploaded
files are not text and are not checked.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import params
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.datastructures import UploadFile
from starlette.requests import HTTPConnection, Request

# A `\uD800`-`\uDFFF` or `\u0000` escape, or a UTF-8-encoded surrogate (ED A0..BF xx).
_MAYBE_UNSTORABLE = re.compile(rb"\\u[dD][89a-fA-F]|\\u0000|\xed[\xa0-\xbf]")
SURROGATE_MESSAGE = "Input should be valid Unicode text: a lone UTF-16 surrogate is not a character"
NUL_MESSAGE = "Input should be text without NUL characters (U+0000)"


def _body_kind(connection: HTTPConnection) -> str | None:
    """The kind of body (`json` or `form`) the route reads, if it reads one."""
    route = connection.scope.get("route")
    if not isinstance(route, APIRoute) or route.body_field is None:
        return None
    return "form" if isinstance(route.body_field.field_info, params.Form) else "json"


def problem_of(value: str) -> str | None:
    """Why `value` cannot be stored, or `None` when it can."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATE_MESSAGE
    return NUL_MESSAGE if "\x00" in value else None


def find_unstorable(document: Any) -> tuple[tuple[int | str, ...], str] | None:
    """The path to the first string (or object key) that cannot be stored, and why.

    Iterative, so a deeply nested document cannot exhaust the stack."""
    pending: list[tuple[tuple[int | str, ...], Any]] = [((), document)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            problem = problem_of(value)
            if problem is not None:
                return path, problem
        elif isinstance(value, dict):
            for key, item in value.items():
                problem = problem_of(key)
                if problem is not None:
                    return (*path, key.encode("utf-8", "replace").decode()), problem
                pending.append(((*path, key), item))
        elif isinstance(value, list):
            pending.extend(((*path, index), item) for index, item in enumerate(value))
    return None


def _refuse(location: str, path: tuple[int | str, ...], problem: str, body: Any = None) -> None:
    raise RequestValidationError(
        [{"type": "string_unicode", "loc": (location, *path), "msg": problem, "input": None}],
        body=body,
    )


async def reject_unstorable_text(connection: HTTPConnection) -> None:
    """422 (400 under `/v1`) for a lone surrogate or a NUL in any text the request carries."""
    for key, value in connection.query_params.multi_items():
        problem = problem_of(key) or problem_of(value)
        if problem is not None:
            _refuse("query", (key,), problem)
    for key, value in connection.path_params.items():
        if isinstance(value, str) and (problem := problem_of(value)) is not None:
            _refuse("path", (key,), problem)
    if not isinstance(connection, Request):
        return
    kind = _body_kind(connection)
    if kind == "form":
        form = await connection.form()  # parsed and kept by FastAPI already (the body is not)
        for key, field in form.multi_items():
            if isinstance(field, UploadFile):
                continue
            problem = problem_of(key) or problem_of(field)
            if problem is not None:
                _refuse("body", (key,), problem)
        return
    if kind is None or not _MAYBE_UNSTORABLE.search(await connection.body()):
        return
    try:
        document = await connection.json()  # parsed and kept by FastAPI already
    except (ValueError, RecursionError):
        return  # not JSON FastAPI could read: it has refused the body already
    found = find_unstorable(document)
    if found is not None:
        _refuse("body", *found, body=document)
