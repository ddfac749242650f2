"""A model request as the fields of an upstream chat-completion request."""

from __future__ import annotations

from typing import Any

from openai.types.chat import ChatCompletionMessageParam

from genai_service.inference.base import (
    ChatMessage,
    ChatRequest,
    ForcedTool,
    JsonOutput,
)


def message_param(message: ChatMessage) -> ChatCompletionMessageParam:
    if message.role == "system":
        return {"role": "system", "content": message.content}
    if message.role == "user":
        return {"role": "user", "content": message.content}
    if message.role == "tool":
        return {
            "role": "tool",
            "content": message.content,
            "tool_call_id": message.tool_call_id or "",
        }
    if message.tool_calls:
        return {
            "role": "assistant",
            "content": message.content or None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in message.tool_calls
            ],
        }
    return {"role": "assistant", "content": message.content}


def request_options(request: ChatRequest) -> dict[str, Any]:
    """The fields of a chat-completion request for `request`, each only when it differs from
    the upstream's default, so servers that do not know a field are not sent it needlessly.
    vLLM's extension fields (`top_k`, `min_p`, `repetition_penalty`) go in the extra body."""
    sampling = request.sampling
    options: dict[str, Any] = {
        "max_tokens": sampling.max_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
    }
    if sampling.stop:
        options["stop"] = list(sampling.stop)
    if sampling.seed is not None:
        options["seed"] = sampling.seed
    if sampling.presence_penalty:
        options["presence_penalty"] = sampling.presence_penalty
    if sampling.frequency_penalty:
        options["frequency_penalty"] = sampling.frequency_penalty
    if sampling.logit_bias:
        options["logit_bias"] = {str(token): bias for token, bias in sampling.logit_bias}
    if sampling.logprobs is not None:
        options["logprobs"] = True
        if sampling.logprobs:
            options["top_logprobs"] = sampling.logprobs
    extra = {
        name: value
        for name, value, neutral in (
            ("top_k", sampling.top_k, 0),
            ("min_p", sampling.min_p, 0.0),
            ("repetition_penalty", sampling.repetition_penalty, 1.0),
        )
        if value != neutral
    }
    if extra:
        options["extra_body"] = extra
    if request.response_format is not None:
        options["response_format"] = _response_format(request.response_format)
    if request.tools:
        options["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    "parameters": dict(tool.parameters),
                    **({"description": tool.description} if tool.description else {}),
                },
            }
            for tool in request.tools
        ]
        choice = request.tool_choice
        options["tool_choice"] = (
            {"type": "function", "function": {"name": choice.name}}
            if isinstance(choice, ForcedTool)
            else choice
        )
        if not request.parallel_tool_calls:
            options["parallel_tool_calls"] = False
    return options


def _response_format(output: JsonOutput) -> dict[str, Any]:
    if output.schema is None:
        return {"type": "json_object"}
    return {
        "type": "json_schema",
        "json_schema": {"name": output.name, "schema": dict(output.schema), "strict": True},
    }
