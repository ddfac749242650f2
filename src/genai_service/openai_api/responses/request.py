"""A `/v1/responses` body, after the conversation it continues, as a model request."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from genai_service.inference.base import (
    ChatMessage,
    ChatRequest,
    ForcedTool,
    JsonOutput,
    Role,
    SamplingParams,
    Tool,
    ToolCall,
    ToolChoice,
)
from genai_service.inference.structured_output import check_schema
from genai_service.kit.errors import BadRequest
from genai_service.openai_api.chat_request import (
    DEFAULT_MAX_TOKENS,
    EMPTY_PARAMETERS,
    OPENAI_TEMPERATURE,
)
from genai_service.openai_api.responses.items import (
    FunctionCallItem,
    FunctionCallOutputItem,
    InputItem,
    MessageItem,
)
from genai_service.openai_api.responses.objects import ToolChoiceRead
from genai_service.openai_api.responses.schemas import (
    AllowedToolsChoice,
    FunctionChoice,
    JsonObjectFormat,
    JsonSchemaTextFormat,
    ResponseCreate,
)

SCHEMA_PARAM = "text.format.schema"
_CHAT_SCHEMA_PARAM = "response_format.json_schema.schema"
_ROLES: dict[str, Role] = {
    "user": "user",
    "assistant": "assistant",
    "system": "system",
    "developer": "system",
}
_CHAT_TOOL_PARAM = re.compile(r"tools\[(\d+)\]\.function\.parameters")


def require_answered_calls(earlier: Sequence[InputItem], given: Sequence[InputItem]) -> None:
    """Every `function_call_output` answers a call made before it (OpenAI refuses orphans too)."""
    calls = {item.call_id for item in earlier if isinstance(item, FunctionCallItem)}
    for index, item in enumerate(given):
        if isinstance(item, FunctionCallItem):
            calls.add(item.call_id)
        elif isinstance(item, FunctionCallOutputItem) and item.call_id not in calls:
            raise BadRequest(
                f"no function call with call_id {item.call_id!r} comes before this output",
                param=f"input[{index}].call_id",
            )


def to_messages(instructions: str | None, items: Sequence[InputItem]) -> list[ChatMessage]:
    """Instructions as the system message, then the items. Function calls join the assistant
    message before them, as one chat message carries its text and its calls."""
    names = {item.call_id: item.name for item in items if isinstance(item, FunctionCallItem)}
    messages = [ChatMessage("system", instructions)] if instructions else []
    for item in items:
        if isinstance(item, MessageItem):
            messages.append(ChatMessage(_ROLES[item.role], item.text))
        elif isinstance(item, FunctionCallItem):
            call = ToolCall(item.call_id, item.name, item.arguments)
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant":
                messages[-1] = replace(last, tool_calls=(*last.tool_calls, call))
            else:
                messages.append(ChatMessage("assistant", "", tool_calls=(call,)))
        else:
            name = names.get(item.call_id)
            messages.append(ChatMessage("tool", item.text, tool_call_id=item.call_id, name=name))
    return messages


@dataclass(frozen=True, slots=True)
class ModelCall:
    """The model request of a body, and how to speak of its parts in the body's terms."""

    request: ChatRequest
    tool_positions: tuple[int, ...]
    """For each tool of `request`, its index in the body's `tools`."""

    def in_body_terms(self, error: BadRequest) -> BadRequest:
        """`error` of the model layer, which speaks chat completions' parameter names, naming the
        fields of this body instead."""

        def rename(text: str) -> str:
            text = text.replace(_CHAT_SCHEMA_PARAM, SCHEMA_PARAM)
            return _CHAT_TOOL_PARAM.sub(
                lambda found: f"tools[{self.tool_positions[int(found[1])]}].parameters", text
            )

        error.detail = rename(error.detail)
        error.param = rename(error.param) if error.param else error.param
        return error


def max_output_tokens(body: ResponseCreate) -> int:
    return body.max_output_tokens or DEFAULT_MAX_TOKENS


def tool_choice_read(body: ResponseCreate) -> ToolChoiceRead:
    """`tool_choice` as the response echoes it."""
    choice = body.tool_choice
    if choice is None:
        return "auto"
    if isinstance(choice, str | FunctionChoice | AllowedToolsChoice):
        return choice
    raise BadRequest("this tool_choice is not supported", param="tool_choice")


def model_call(body: ResponseCreate, messages: Sequence[ChatMessage]) -> ModelCall:
    tools, positions, choice = _tools(body)
    request = ChatRequest(
        messages=list(messages),
        sampling=SamplingParams(
            max_tokens=max_output_tokens(body),
            temperature=OPENAI_TEMPERATURE if body.temperature is None else body.temperature,
            top_p=1.0 if body.top_p is None else body.top_p,
            logprobs=(body.top_logprobs or 0) if body.wants_logprobs else None,
        ),
        response_format=_output(body),
        tools=tools,
        tool_choice=choice,
        parallel_tool_calls=body.parallel_tool_calls is not False,
    )
    return ModelCall(request, positions)


def _output(body: ResponseCreate) -> JsonOutput | None:
    format_ = body.text.format if body.text else None
    if isinstance(format_, JsonObjectFormat):
        return JsonOutput()
    if not isinstance(format_, JsonSchemaTextFormat):
        return None
    problem = check_schema(format_.schema_)
    if problem is not None:
        raise BadRequest(
            f"{SCHEMA_PARAM} is not a valid JSON Schema: {problem}", param=SCHEMA_PARAM
        )
    return JsonOutput(schema=format_.schema_, name=format_.name)


def _tools(body: ResponseCreate) -> tuple[tuple[Tool, ...], tuple[int, ...], ToolChoice]:
    """The tools the model is offered, their places in the body, and the choice among them."""
    tools: list[Tool] = []
    for index, spec in enumerate(body.tools or []):
        parameters = spec.parameters if spec.parameters is not None else EMPTY_PARAMETERS
        problem = check_schema(parameters)
        if problem is not None:
            param = f"tools[{index}].parameters"
            raise BadRequest(f"{param} is not a valid JSON Schema: {problem}", param=param)
        if any(tool.name == spec.name for tool in tools):
            raise BadRequest(f"two tools are named {spec.name!r}", param=f"tools[{index}].name")
        tools.append(Tool(name=spec.name, parameters=parameters, description=spec.description))
    positions = tuple(range(len(tools)))
    names = [tool.name for tool in tools]
    choice = body.tool_choice
    if choice is None:
        return tuple(tools), positions, "auto" if tools else "none"
    if isinstance(choice, FunctionChoice):
        _require_tool(choice.name, names, "tool_choice.name")
        return tuple(tools), positions, ForcedTool(choice.name)
    if isinstance(choice, AllowedToolsChoice):
        allowed = {tool.name for tool in choice.tools}
        for index, tool in enumerate(choice.tools):
            _require_tool(tool.name, names, f"tool_choice.tools[{index}].name")
        kept = [index for index, tool in enumerate(tools) if tool.name in allowed]
        return tuple(tools[index] for index in kept), tuple(kept), choice.mode
    if isinstance(choice, str):
        return tuple(tools), positions, choice
    raise BadRequest("this tool_choice is not supported", param="tool_choice")


def _require_tool(name: str, names: list[str], param: str) -> None:
    if name not in names:
        raise BadRequest(
            f"`tool_choice` names the function {name!r}, which is not in `tools`", param=param
        )
