"""JSON Schemas of many shapes, for structured-output tests: every one must come back valid."""

from __future__ import annotations

from typing import Any

NAME = {"type": "string", "maxLength": 24}

SCHEMAS: dict[str, dict[str, Any]] = {
    "flat_object": {
        "type": "object",
        "properties": {"name": NAME, "age": {"type": "integer"}},
        "required": ["name", "age"],
    },
    "nested_object": {
        "type": "object",
        "properties": {
            "person": {
                "type": "object",
                "properties": {"name": NAME, "city": NAME},
                "required": ["name", "city"],
            }
        },
        "required": ["person"],
    },
    "array_of_strings": {
        "type": "object",
        "properties": {"tags": {"type": "array", "items": NAME, "minItems": 1, "maxItems": 3}},
        "required": ["tags"],
    },
    "array_of_objects": {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"label": NAME, "count": {"type": "integer"}},
                    "required": ["label", "count"],
                },
                "minItems": 1,
                "maxItems": 2,
            }
        },
        "required": ["items"],
    },
    "enum": {
        "type": "object",
        "properties": {"color": {"enum": ["red", "green", "blue"]}},
        "required": ["color"],
    },
    "const": {
        "type": "object",
        "properties": {"kind": {"const": "animal"}, "name": NAME},
        "required": ["kind", "name"],
    },
    "boolean_and_null": {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}, "note": {"type": "null"}},
        "required": ["ok", "note"],
    },
    "number": {
        "type": "object",
        "properties": {"price": {"type": "number"}},
        "required": ["price"],
    },
    "optional_field": {
        "type": "object",
        "properties": {"title": NAME, "subtitle": NAME},
        "required": ["title"],
    },
    "nullable_union": {
        "type": "object",
        "properties": {"nickname": {"anyOf": [NAME, {"type": "null"}]}},
        "required": ["nickname"],
    },
    "type_list": {
        "type": "object",
        "properties": {"value": {"type": ["integer", "boolean"]}},
        "required": ["value"],
    },
    "references": {
        "$defs": {
            "point": {
                "type": "object",
                "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
                "required": ["x", "y"],
            }
        },
        "type": "object",
        "properties": {"start": {"$ref": "#/$defs/point"}, "end": {"$ref": "#/$defs/point"}},
        "required": ["start", "end"],
    },
    "date_format": {
        "type": "object",
        "properties": {"day": {"type": "string", "format": "date"}},
        "required": ["day"],
    },
    "pattern": {
        "type": "object",
        "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{2}$"}},
        "required": ["code"],
    },
    "string_length": {
        "type": "object",
        "properties": {"word": {"type": "string", "minLength": 3, "maxLength": 8}},
        "required": ["word"],
    },
    "tuple": {
        "type": "object",
        "properties": {
            "pair": {"type": "array", "prefixItems": [NAME, {"type": "integer"}]},
        },
        "required": ["pair"],
    },
    "no_extra_properties": {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
        "additionalProperties": False,
    },
    "map_of_integers": {
        "type": "object",
        "additionalProperties": {"type": "integer"},
    },
    "deep_nesting": {
        "type": "object",
        "properties": {
            "a": {
                "type": "object",
                "properties": {
                    "b": {
                        "type": "object",
                        "properties": {"c": {"enum": ["x", "y"]}},
                        "required": ["c"],
                    }
                },
                "required": ["b"],
            }
        },
        "required": ["a"],
    },
    "pydantic_style": {
        "title": "Recipe",
        "description": "A recipe.",
        "type": "object",
        "properties": {
            "title": {"title": "Title", "type": "string", "maxLength": 30},
            "servings": {"title": "Servings", "type": "integer"},
            "steps": {
                "title": "Steps",
                "type": "array",
                "items": {"type": "string", "maxLength": 40},
                "maxItems": 3,
            },
        },
        "required": ["title", "servings", "steps"],
    },
}
