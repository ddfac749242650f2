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


STREAM_OPTIONS = {"include_usage": True}
"""Asked of every stream: the usage comes in a last chunk."""


def chat_body(model: str, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
    """The JSON body of an upstream chat-completion request for `request`."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [message_param(m) for m in request.messages],
        **sampling_fields(request),
    }
    if stream:
        body |= {"stream": True, "stream_options": STREAM_OPTIONS}
    if request.response_format is not None:
        body["response_format"] = _response_format(request.response_format)
    if request.tools:
        body["tools"] = [
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
        body["tool_choice"] = (
            {"type": "function", "function": {"name": choice.name}}
            if isinstance(choice, ForcedTool)
            else choice
        )
        if not request.parallel_tool_calls:
            body["parallel_tool_calls"] = False
    if request.sampling.logprobs is not None:
        body["logprobs"] = True
        if request.sampling.logprobs:
            body["top_logprobs"] = request.sampling.logprobs
    return body


def completion_body(
    model: str, request: ChatRequest, prompt: str | list[int], *, stream: bool
) -> dict[str, Any]:
    """The JSON body of an upstream legacy completion (`/v1/completions`): a raw prompt."""
    body: dict[str, Any] = {"model": model, "prompt": prompt, **sampling_fields(request)}
    if stream:
        body |= {"stream": True, "stream_options": STREAM_OPTIONS}
    if request.sampling.logprobs is not None:
        body["logprobs"] = request.sampling.logprobs
    return body


def sampling_fields(request: ChatRequest) -> dict[str, Any]:
    """The sampling fields of `request`, each only when it differs from the upstream's default,
    so servers that do not know a field are not sent it needlessly. vLLM's extension fields
    (`top_k`, `min_p`, `repetition_penalty`) are among them, at the top level as vLLM reads
    them."""
    sampling = request.sampling
    fields: dict[str, Any] = {
        "max_tokens": sampling.max_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
    }
    if sampling.stop:
        fields["stop"] = list(sampling.stop)
    if sampling.seed is not None:
        fields["seed"] = sampling.seed
    if sampling.presence_penalty:
        fields["presence_penalty"] = sampling.presence_penalty
    if sampling.frequency_penalty:
        fields["frequency_penalty"] = sampling.frequency_penalty
    if sampling.logit_bias:
        fields["logit_bias"] = {str(token): bias for token, bias in sampling.logit_bias}
    for name, value, neutral in (
        ("top_k", sampling.top_k, 0),
        ("min_p", sampling.min_p, 0.0),
        ("repetition_penalty", sampling.repetition_penalty, 1.0),
    ):
        if value != neutral:
            fields[name] = value
    return fields


def _response_format(output: JsonOutput) -> dict[str, Any]:
    if output.schema is None:
        return {"type": "json_object"}
    return {
        "type": "json_schema",
        "json_schema": {"name": output.name, "schema": dict(output.schema), "strict": True},
    }
