"""An OpenAI chat-completion body as a model request: messages, sampling, output format, tools."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from genai_service.inference.base import (
    ChatMessage,
    ChatRequest,
    ForcedTool,
    JsonOutput,
    SamplingParams,
    Tool,
    ToolCall,
    ToolChoice,
)
from genai_service.inference.structured_output import check_schema
from genai_service.kit.errors import BadRequest
from genai_service.openai_api.chat_schemas import (
    AssistantHistoryMessage,
    ChatCompletionCreate,
    ChatCompletionMessage,
    FunctionTool,
    NamedToolChoice,
    ResponseFormatJsonObject,
    ResponseFormatJsonSchema,
    SystemMessage,
    ToolChoiceOption,
    ToolMessage,
    UserMessage,
)

DEFAULT_MAX_TOKENS = SamplingParams().max_tokens
OPENAI_TEMPERATURE = 1.0
"""OpenAI's default temperature (and nucleus `top_p` of 1): what a request that sets none gets."""
EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


def to_chat_request(body: ChatCompletionCreate) -> ChatRequest:
    tools = tuple(_tool(index, tool) for index, tool in enumerate(body.tools or []))
    return ChatRequest(
        messages=[_message(message) for message in body.messages],
        sampling=SamplingParams(
            max_tokens=body.max_completion_tokens or body.max_tokens or DEFAULT_MAX_TOKENS,
            temperature=OPENAI_TEMPERATURE if body.temperature is None else body.temperature,
            top_p=1.0 if body.top_p is None else body.top_p,
            stop=body.stop_sequences,
            seed=body.seed,
            presence_penalty=body.presence_penalty or 0.0,
            frequency_penalty=body.frequency_penalty or 0.0,
            repetition_penalty=body.repetition_penalty or 1.0,
            top_k=max(body.top_k or 0, 0),
            min_p=body.min_p or 0.0,
            logit_bias=tuple((int(key), bias) for key, bias in (body.logit_bias or {}).items()),
            logprobs=(body.top_logprobs or 0) if body.logprobs else None,
        ),
        response_format=_output(body),
        tools=tools,
        tool_choice=_tool_choice(body.tool_choice, tools),
        parallel_tool_calls=body.parallel_tool_calls is not False,
    )


def for_choice(request: ChatRequest, index: int) -> ChatRequest:
    """The request of choice `index` of `n`: a seeded request gets seed + index, so the choices
    differ from each other and each is reproducible."""
    seed = request.sampling.seed
    if index == 0 or seed is None:
        return request
    return replace(request, sampling=replace(request.sampling, seed=seed + index))


def _message(message: ChatCompletionMessage) -> ChatMessage:
    if isinstance(message, SystemMessage):
        return ChatMessage("system", message.text, name=message.name)
    if isinstance(message, UserMessage):
        return ChatMessage("user", message.text, name=message.name)
    if isinstance(message, AssistantHistoryMessage):
        calls = tuple(
            ToolCall(call.id, call.function.name, call.function.arguments)
            for call in message.tool_calls or []
        )
        return ChatMessage("assistant", message.text, tool_calls=calls, name=message.name)
    if isinstance(message, ToolMessage):
        return ChatMessage("tool", message.text, tool_call_id=message.tool_call_id)
    raise BadRequest(f"messages with role {message.role!r} are not supported", param="messages")


def _output(body: ChatCompletionCreate) -> JsonOutput | None:
    format_ = body.response_format
    if isinstance(format_, ResponseFormatJsonObject):
        return JsonOutput()
    if not isinstance(format_, ResponseFormatJsonSchema):
        return None
    spec = format_.json_schema
    if spec.schema_ is None:
        return JsonOutput(name=spec.name)
    _require_valid_schema(spec.schema_, "response_format.json_schema.schema")
    return JsonOutput(schema=spec.schema_, name=spec.name)


def _tool(index: int, tool: FunctionTool) -> Tool:
    spec = tool.function
    parameters = spec.parameters if spec.parameters is not None else EMPTY_PARAMETERS
    _require_valid_schema(parameters, f"tools[{index}].function.parameters")
    return Tool(name=spec.name, parameters=parameters, description=spec.description)


def _tool_choice(choice: ToolChoiceOption | None, tools: tuple[Tool, ...]) -> ToolChoice:
    if choice is None:
        return "auto" if tools else "none"
    if not isinstance(choice, NamedToolChoice):
        return choice
    name = choice.function.name
    if all(tool.name != name for tool in tools):
        raise BadRequest(
            f"`tool_choice` names the function {name!r}, which is not in `tools`",
            param="tool_choice",
        )
    return ForcedTool(name)


def _require_valid_schema(schema: dict[str, Any], param: str) -> None:
    problem = check_schema(schema)
    if problem is not None:
        raise BadRequest(f"{param} is not a valid JSON Schema: {problem}", param=param)
