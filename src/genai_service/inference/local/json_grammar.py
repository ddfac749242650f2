"""JSON Schemas as llama.cpp grammars, failing closed on what a grammar cannot enforce.

The conversion is llama-cpp-python's own (`llama_cpp.llama_grammar`, the port of llama.cpp's
`json_schema_to_grammar`). It silently skips keywords it cannot express (`minimum`,
`uniqueItems`, `not`, ...), which would let output that breaks the schema through with a
`200`. So every schema is checked first: a keyword outside what the grammar enforces is
refused with a `400` naming the keyword and where it is, never passed over.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from typing import Any

from llama_cpp.llama_grammar import json_schema_to_gbnf

from genai_service.kit.errors import BadRequest

ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "default",
        "examples",
        "$schema",
        "$id",
        "$comment",
        "deprecated",
        "readOnly",
        "writeOnly",
    }
)
_DEFINITIONS = ("$defs", "definitions")
_SUPPORTED_FORMATS = frozenset({"date", "time", "date-time", "uuid"})
_STRING_LENGTH = frozenset({"minLength", "maxLength"})
_KEYWORDS_BY_FORM: dict[str, frozenset[str]] = {
    "$ref": frozenset({"$ref"}),
    "anyOf": frozenset({"anyOf"}),
    "const": frozenset({"const", "type"}),
    "enum": frozenset({"enum", "type"}),
    "object": frozenset({"type", "properties", "required", "additionalProperties"}),
    "array": frozenset({"type", "items", "minItems", "maxItems"}),
    "tuple": frozenset({"type", "prefixItems"}),
    "pattern": frozenset({"type", "pattern"}),
    "format": frozenset({"type", "format"}),
    "string": frozenset({"type", *_STRING_LENGTH}),
    "types": frozenset({"type"}),
}
"""For each form the converter recognises, the keywords it enforces in that form. A schema's
form is decided as the converter decides it; any other keyword beside it would be skipped."""
_SIMPLE_TYPES = frozenset({"string", "number", "integer", "boolean", "null", "object", "array"})


class UnsupportedSchema(BadRequest):
    title = "Schema not supported"
    slug = "unsupported-schema"


def require_supported(schema: Mapping[str, Any], *, where: str) -> dict[str, Any]:
    """`schema`, ready for conversion; `UnsupportedSchema` naming the first keyword no grammar
    enforces. `where` names the schema in errors (e.g. `response_format.json_schema.schema`)."""
    prepared: dict[str, Any] = _inline_single_allof(copy.deepcopy(dict(schema)))
    for pointer, problem in _problems(prepared, "#"):
        raise UnsupportedSchema(
            f"{where}: {problem} (at {pointer}); constrained decoding on this model cannot "
            "guarantee it, so the request is refused rather than answered unconstrained",
            param=where,
        )
    return prepared


def grammar_for_schema(schema: Mapping[str, Any], *, where: str) -> str:
    """The GBNF grammar of the JSON values valid under `schema` (see `require_supported`)."""
    prepared = require_supported(schema, where=where)
    try:
        grammar: str = json_schema_to_gbnf(json.dumps(prepared))
    except (ValueError, TypeError, AssertionError, KeyError, RecursionError) as error:
        raise UnsupportedSchema(
            f"{where}: the schema cannot be turned into a grammar ({error})", param=where
        ) from None
    return grammar


def object_grammar() -> str:
    """Any JSON object: OpenAI's `json_object` mode."""
    grammar: str = json_schema_to_gbnf(json.dumps({"type": "object"}))
    return grammar


def _inline_single_allof(node: Any) -> Any:
    """`{"allOf": [{"$ref": X}], "description": ...}` is how some generators attach a
    description to a reference; it means `{"$ref": X}`."""
    if isinstance(node, list):
        return [_inline_single_allof(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _inline_single_allof(value) for key, value in node.items()}
    parts = node.get("allOf")
    if (
        isinstance(parts, list)
        and len(parts) == 1
        and isinstance(parts[0], dict)
        and set(parts[0]) == {"$ref"}
        and set(node) - ANNOTATIONS == {"allOf"}
    ):
        return {key: value for key, value in node.items() if key != "allOf"} | parts[0]
    return node


def _problems(schema: Any, pointer: str) -> Iterator[tuple[str, str]]:
    """Each keyword of `schema` (and of the schemas inside it) that no grammar enforces."""
    if schema is True or schema == {}:
        return
    if not isinstance(schema, dict):
        yield pointer, "a schema must be an object"
        return
    if pointer == "#":
        for name in _DEFINITIONS:
            for key, definition in (schema.get(name) or {}).items():
                yield from _problems(definition, f"#/{name}/{key}")
    local = {key: value for key, value in schema.items() if key not in ANNOTATIONS}
    if pointer == "#":
        local = {key: value for key, value in local.items() if key not in _DEFINITIONS}
    form = _form(local)
    for keyword in sorted(set(local) - _KEYWORDS_BY_FORM[form]):
        yield pointer, _refusal(keyword, local)
    yield from _children(form, local, pointer)


def _form(schema: Mapping[str, Any]) -> str:
    """Which rule the converter builds for `schema` (mirrors its order of checks)."""
    kind = schema.get("type")
    if "$ref" in schema:
        return "$ref"
    if "anyOf" in schema or "oneOf" in schema:
        return "anyOf"
    if isinstance(kind, list):
        return "types"
    if "const" in schema:
        return "const"
    if "enum" in schema:
        return "enum"
    if kind in (None, "object") and ("properties" in schema or "additionalProperties" in schema):
        return "object"
    if kind in (None, "array") and "prefixItems" in schema and "items" not in schema:
        return "tuple"
    if kind in (None, "array") and "items" in schema:
        return "array"
    if kind in (None, "string") and "pattern" in schema:
        return "pattern"
    if kind in (None, "string") and "format" in schema:
        return "format"
    return "string" if kind == "string" else "types"


def _refusal(keyword: str, schema: Mapping[str, Any]) -> str:
    if keyword == "oneOf":
        return "'oneOf' is not supported (use 'anyOf')"
    if keyword == "format":
        return f"the string format {schema['format']!r} is not supported"
    return f"the keyword {keyword!r} is not supported here"


def _children(form: str, schema: Mapping[str, Any], pointer: str) -> Iterator[tuple[str, str]]:
    kind = schema.get("type")
    if form == "$ref":
        reference = schema["$ref"]
        if not isinstance(reference, str) or not reference.startswith("#/"):
            yield pointer, f"only local references ('#/...') are supported, not {reference!r}"
    elif form == "anyOf":
        if "oneOf" in schema:
            yield pointer, _refusal("oneOf", schema)
        for index, option in enumerate(schema.get("anyOf") or []):
            yield from _problems(option, f"{pointer}/anyOf/{index}")
    elif form == "types":
        names = kind if isinstance(kind, list) else [kind]
        for name in names:
            if name is not None and name not in _SIMPLE_TYPES:
                yield pointer, f"the type {name!r} is not a JSON Schema type"
    elif form == "object":
        properties = schema.get("properties") or {}
        for name in schema.get("required") or []:
            if name not in properties:
                yield pointer, f"the required property {name!r} is not among 'properties'"
        for name, child in properties.items():
            yield from _problems(child, f"{pointer}/properties/{name}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            yield from _problems(extra, f"{pointer}/additionalProperties")
    elif form == "array":
        items = schema["items"]
        if isinstance(items, list):
            for index, item in enumerate(items):
                yield from _problems(item, f"{pointer}/items/{index}")
        elif items is False:
            yield pointer, "'items': false is not supported"
        else:
            yield from _problems(items, f"{pointer}/items")
    elif form == "tuple":
        for index, item in enumerate(schema["prefixItems"]):
            yield from _problems(item, f"{pointer}/prefixItems/{index}")
    elif form == "format" and schema["format"] not in _SUPPORTED_FORMATS:
        yield pointer, _refusal("format", schema)
