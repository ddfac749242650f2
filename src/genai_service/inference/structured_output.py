"""Checking a finished reply against the output format its request asked for.

Constrained decoding makes a local reply follow the schema token by token; this check is the
guarantee at the end, for every provider: a reply that does not parse or does not validate is
never returned as if it did. A reply cut short by `max_tokens` is not checked: its finish
reason (`length`) already says it is incomplete.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError

from genai_service.inference.base import (
    ForcedTool,
    JsonOutput,
    ProviderError,
    Tool,
    ToolCall,
    ToolChoice,
)


class InvalidStructuredOutput(ProviderError):
    """The model's reply does not match the format the request required."""

    title = "Invalid structured output"
    slug = "invalid-structured-output"


def check_json_reply(text: str, output: JsonOutput) -> None:
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidStructuredOutput("the model's reply is not valid JSON") from None
    if output.schema is None:
        if not isinstance(value, dict):
            raise InvalidStructuredOutput("the model's reply is not a JSON object")
        return
    _validate(value, output.schema, f"the model's reply does not match the schema {output.name!r}")


def check_tool_calls(calls: Sequence[ToolCall], tools: Sequence[Tool]) -> None:
    by_name = {tool.name: tool for tool in tools}
    for call in calls:
        tool = by_name.get(call.name)
        if tool is None:
            raise InvalidStructuredOutput(f"the model called an unknown function {call.name!r}")
        try:
            arguments = json.loads(call.arguments)
        except ValueError:
            raise InvalidStructuredOutput(
                f"the model's arguments for {call.name!r} are not valid JSON"
            ) from None
        _validate(arguments, tool.parameters, f"the model's arguments for {call.name!r}")


def check_tool_choice(calls: Sequence[ToolCall], choice: ToolChoice) -> None:
    """A reply that `tool_choice` obliged to call a function, and that did not: a server that
    does not honour `tool_choice` answers with text instead."""
    if choice == "required" and not calls:
        raise InvalidStructuredOutput(
            "`tool_choice` is `required` but the model answered without calling a function"
        )
    if isinstance(choice, ForcedTool) and [call.name for call in calls] != [choice.name]:
        raise InvalidStructuredOutput(
            f"`tool_choice` names the function {choice.name!r} but the model did not call it "
            "(alone)"
        )


def check_schema(schema: Mapping[str, Any]) -> str | None:
    """Why `schema` is not a valid JSON Schema, or `None` when it is."""
    try:
        jsonschema.validators.validator_for(schema).check_schema(dict(schema))
    except SchemaError as error:
        return str(error.message)
    return None


def _validate(value: Any, schema: Mapping[str, Any], failure: str) -> None:
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is not None:
        location = "/".join(str(part) for part in error.absolute_path) or "(the top level)"
        raise InvalidStructuredOutput(f"{failure}: {error.message} at {location}")
