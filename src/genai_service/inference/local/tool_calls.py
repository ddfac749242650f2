"""Tool calling on a local model whose chat template has no tool format of its own.

The "generic" approach (llama.cpp's server has the same): the tools are described in the
system prompt, and the reply is one JSON object, constrained by a grammar, that either calls
tools or answers:

    {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}
    {"response": "It is sunny."}

With `tool_choice` "required" (or a named function) only the first form is allowed, and its
calls match the tools' parameter schemas; with "auto" either form. The conversation history is
written in the same form, so earlier calls and their results read the way the model is asked
to write.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from loguru import logger

from genai_service.inference.base import ChatMessage, ChatRequest, ForcedTool, Tool, ToolCall
from genai_service.kit.random_ids import random_hex

CALLS_KEY = "tool_calls"
ANSWER_KEY = "response"
RESULT_KEY = "tool_result"
_DEFINITIONS = ("$defs", "definitions")


def offered_tools(request: ChatRequest) -> tuple[Tool, ...]:
    """The tools the reply may call: all of them, or the one `tool_choice` names."""
    if not request.offers_tools:
        return ()
    if isinstance(request.tool_choice, ForcedTool):
        return tuple(tool for tool in request.tools if tool.name == request.tool_choice.name)
    return request.tools


def reply_schema(request: ChatRequest, *, answer: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON Schema every reply of a request that offers tools must match; `answer` is the
    schema of an answer without calls (a string, or the request's `response_format`)."""
    definitions: dict[str, Any] = {}
    calls = [
        {
            "type": "object",
            "properties": {
                "name": {"const": tool.name},
                "arguments": _embedded(tool.parameters, f"tool{index}_", definitions),
            },
            "required": ["name", "arguments"],
        }
        for index, tool in enumerate(offered_tools(request))
    ]
    call_list: dict[str, Any] = {"type": "array", "items": {"anyOf": calls}, "minItems": 1}
    if not request.parallel_tool_calls:
        call_list["maxItems"] = 1
    calling = {"type": "object", "properties": {CALLS_KEY: call_list}, "required": [CALLS_KEY]}
    schema: dict[str, Any] = calling
    if request.tool_choice == "auto":
        answering = {
            "type": "object",
            "properties": {ANSWER_KEY: _embedded(answer, "answer_", definitions)},
            "required": [ANSWER_KEY],
        }
        schema = {"anyOf": [calling, answering]}
    if definitions:
        schema["$defs"] = definitions
    return schema


def instructions(request: ChatRequest) -> str:
    """What the system prompt says about the tools and the form of the reply."""
    lines = ["You can call these functions:"]
    for tool in offered_tools(request):
        lines.append(f"- {tool.name}: {tool.description or 'no description'}")
        lines.append(f"  arguments (JSON Schema): {json.dumps(tool.parameters)}")
    lines.append(
        f'To call functions, reply with JSON: {{"{CALLS_KEY}": [{{"name": "<function name>", '
        '"arguments": {<the arguments>}}]}'
    )
    if request.tool_choice == "auto":
        lines.append(
            f'To answer without calling a function, reply with JSON: {{"{ANSWER_KEY}": '
            '"<your answer>"}'
        )
    return "\n".join(lines)


def prompt_messages(request: ChatRequest, *, tool_role: bool) -> list[ChatMessage]:
    """The conversation as the model reads it: the tool instructions in the system message,
    earlier calls and results written as JSON. `tool_role`: the template renders a `tool` role;
    otherwise results are given as user messages."""
    messages = [_written(message, tool_role=tool_role) for message in request.messages]
    if not request.offers_tools:
        return messages
    guide = instructions(request)
    if messages and messages[0].role == "system":
        return [ChatMessage("system", f"{messages[0].content}\n\n{guide}"), *messages[1:]]
    return [ChatMessage("system", guide), *messages]


def parse_reply(text: str) -> tuple[str, tuple[ToolCall, ...]]:
    """The answer text and the calls of a reply written in the generic form.

    A reply that is not in that form (cut short by `max_tokens`, or from a request that did not
    constrain it) is returned as plain text, never as an error.
    """
    try:
        reply = json.loads(text)
    except ValueError:
        logger.info("a tool-calling reply is not JSON; returned as text")
        return text, ()
    if isinstance(reply, dict) and ANSWER_KEY in reply and CALLS_KEY not in reply:
        answer = reply[ANSWER_KEY]
        return answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False), ()
    calls = reply.get(CALLS_KEY) if isinstance(reply, dict) else None
    if not isinstance(calls, list) or not all(_is_call(call) for call in calls):
        logger.info("a tool-calling reply has no calls in the expected form; returned as text")
        return text, ()
    return "", tuple(
        ToolCall(
            id=f"call_{random_hex()[:24]}",
            name=call["name"],
            arguments=json.dumps(call["arguments"], ensure_ascii=False),
        )
        for call in calls
    )


def _is_call(call: Any) -> bool:
    return isinstance(call, dict) and isinstance(call.get("name"), str) and "arguments" in call


def _written(message: ChatMessage, *, tool_role: bool) -> ChatMessage:
    if message.role == "assistant" and message.tool_calls:
        calls = [
            {"name": call.name, "arguments": _arguments(call.arguments)}
            for call in message.tool_calls
        ]
        return ChatMessage("assistant", json.dumps({CALLS_KEY: calls}, ensure_ascii=False))
    if message.role == "tool":
        result = {"tool_call_id": message.tool_call_id, "content": message.content}
        if message.name:
            result["name"] = message.name
        text = json.dumps({RESULT_KEY: result}, ensure_ascii=False)
        return ChatMessage("tool" if tool_role else "user", text)
    return message


def _arguments(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _embedded(schema: Mapping[str, Any], prefix: str, definitions: dict[str, Any]) -> Any:
    """`schema` placed inside a larger one: its definitions move to the root under prefixed
    names, and its local references are rewritten to them."""
    copied = copy.deepcopy(dict(schema)) or {"type": "object"}
    for name in _DEFINITIONS:
        for key, definition in (copied.pop(name, None) or {}).items():
            definitions[f"{prefix}{key}"] = _rewrite_references(definition, prefix)
    return _rewrite_references(copied, prefix)


def _rewrite_references(node: Any, prefix: str) -> Any:
    if isinstance(node, list):
        return [_rewrite_references(item, prefix) for item in node]
    if not isinstance(node, dict):
        return node
    rewritten = {key: _rewrite_references(value, prefix) for key, value in node.items()}
    reference = rewritten.get("$ref")
    for name in _DEFINITIONS:
        if isinstance(reference, str) and reference.startswith(f"#/{name}/"):
            rewritten["$ref"] = f"#/$defs/{prefix}{reference.removeprefix(f'#/{name}/')}"
    return rewritten
