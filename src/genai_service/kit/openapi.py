"""The error responses of the OpenAPI document, written once for every operation.

FastAPI documents a 422 with its own `HTTPValidationError` body and leaves every other error
undocumented, while this service answers every error as an RFC 9457 problem (OpenAI's error
body under `/v1`, where invalid requests are 400). So that the document is true, each operation
gets, from its shape alone:
- its validation error (422 problem listing the fields; 400 under `/v1`) when it takes input;
- 413 when it takes a body, 401 when it names a security scheme, 404 when its path has a
  parameter;
- the problem body on every error status a route lists without one (`responses={409: {}}`);
- a `default` response: any other error (403, 409, 429, 5xx, ...) is a problem too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict
from pydantic.json_schema import SkipJsonSchema

from genai_service.kit.problems import OPENAI_PATH_PREFIX, PROBLEM_MEDIA_TYPE

SCHEMA_REF = "#/components/schemas/{model}"


def _without_default(schema: JsonDict) -> None:
    schema.pop("default", None)  # an absent member, not a null one


class Problem(BaseModel):
    """RFC 9457 problem details; some problems add members of their own."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str | SkipJsonSchema[None] = Field(
        default=None,
        description="The request's path; absent when the request could not be parsed as HTTP.",
        json_schema_extra=_without_default,
    )
    request_id: str


class FieldError(BaseModel):
    field: str
    location: str
    message: str
    type: str


class ValidationProblem(Problem):
    errors: list[FieldError]


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIError(BaseModel):
    """OpenAI's error body, which OpenAI's SDKs turn into their exception types."""

    error: OpenAIErrorDetail


_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def _content(model: type[BaseModel], media_type: str) -> dict[str, Any]:
    return {media_type: {"schema": {"$ref": SCHEMA_REF.format(model=model.__name__)}}}


def _add_schemas(components: dict[str, Any], *models: type[BaseModel]) -> None:
    for model in models:
        schema = model.model_json_schema(ref_template=SCHEMA_REF)
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema


def _document_errors(path: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation["responses"]
    if path.startswith(OPENAI_PATH_PREFIX):
        error = _content(OpenAIError, "application/json")
        validation_status, validation = "400", error
    else:
        error = _content(Problem, PROBLEM_MEDIA_TYPE)
        validation_status, validation = "422", _content(ValidationProblem, PROBLEM_MEDIA_TYPE)
    if responses.pop("422", None) is not None or operation.get("parameters"):
        responses[validation_status] = {
            "description": "Invalid request: each invalid field is named",
            "content": validation,
        }
    if "requestBody" in operation:
        responses.setdefault("413", {"description": "The request body is too large"})
    if operation.get("security"):
        responses.setdefault("401", {"description": "Missing or invalid credentials"})
    if "{" in path:
        responses.setdefault("404", {"description": "No such resource (or not the caller's)"})
    responses["default"] = {"description": "Any other error"}
    for status, response in responses.items():
        if (status == "default" or int(status) >= 400) and "content" not in response:
            response["content"] = error


def document_error_responses(document: dict[str, Any]) -> dict[str, Any]:
    """`document` (FastAPI's OpenAPI document) with the errors this service answers."""
    components: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        components.pop(name, None)
    _add_schemas(components, Problem, ValidationProblem, OpenAIError)
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            _document_errors(path, operation)
    return document


def install_error_responses(app: FastAPI, *edits: Callable[[dict[str, Any]], None]) -> None:
    """Make `app.openapi()` (and `/openapi.json`) document the error responses, then make
    `edits` (other modules' additions) to the document, once."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = document_error_responses(build())
            for edit in edits:
                edit(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's way to extend the document
