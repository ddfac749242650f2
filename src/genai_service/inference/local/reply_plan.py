"""What a request becomes before the engine sees it: prompt tokens and the grammar of its reply.

Free text has no grammar. `response_format` constrains the reply to JSON (any object, or one
matching a schema); tools constrain it to the generic tool-calling form (`tool_calls`), whose
answer, when the request also has a `response_format`, is that JSON value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from genai_service.inference.base import ChatRequest, JsonOutput
from genai_service.inference.local import tool_calls
from genai_service.inference.local.json_grammar import (
    grammar_for_schema,
    object_grammar,
    require_supported,
)
from genai_service.inference.local.prompt_tokenizer import PromptTokenizer
from genai_service.kit.errors import BadRequest

RESPONSE_SCHEMA_PARAM = "response_format.json_schema.schema"


@dataclass(frozen=True, slots=True)
class ReplyPlan:
    prompt: list[int]
    grammar: str | None
    tool_calling: bool
    """The reply is in the generic tool-calling form: buffer it and parse it at the end."""


def plan_reply(request: ChatRequest, tokenizer: PromptTokenizer) -> ReplyPlan:
    """CPU work (templating, schema conversion, tokenising): call it from a worker thread."""
    unknown = [t for t, _ in request.sampling.logit_bias if not 0 <= t < tokenizer.vocabulary_size]
    if unknown:
        raise BadRequest(
            f"`logit_bias` names token {unknown[0]}, but this model's vocabulary has "
            f"{tokenizer.vocabulary_size} tokens (ids 0 to {tokenizer.vocabulary_size - 1})",
            param="logit_bias",
        )
    grammar: str | None = None
    constrained = request.offers_tools or request.response_format is not None
    if constrained and request.sampling.stop:
        raise BadRequest(
            "`stop` cannot be combined with `response_format` or `tools` on this model: a "
            "stop sequence would cut the structured reply short",
            param="stop",
        )
    if request.offers_tools:
        if not tool_calls.offered_tools(request):
            raise BadRequest(
                "`tool_choice` names a function that is not in `tools`", param="tool_choice"
            )
        for index, tool in enumerate(request.tools):
            require_supported(tool.parameters, where=f"tools[{index}].function.parameters")
        answer = _answer_schema(request.response_format)
        schema = tool_calls.reply_schema(request, answer=answer)
        grammar = grammar_for_schema(schema, where="tools")
    elif request.response_format is not None:
        output = request.response_format
        grammar = (
            object_grammar()
            if output.schema is None
            else grammar_for_schema(output.schema, where=RESPONSE_SCHEMA_PARAM)
        )
    if request.prompt is not None:
        return ReplyPlan(_raw_prompt(request.prompt, tokenizer), grammar, tool_calling=False)
    messages = tool_calls.prompt_messages(request, tool_role=tokenizer.renders_tool_role)
    return ReplyPlan(tokenizer.tokens_for(messages), grammar, request.offers_tools)


def _raw_prompt(prompt: str | tuple[int, ...], tokenizer: PromptTokenizer) -> list[int]:
    if isinstance(prompt, str):
        return tokenizer.tokens_of(prompt)
    unknown = [token for token in prompt if not 0 <= token < tokenizer.vocabulary_size]
    if unknown:
        raise BadRequest(
            f"the prompt has token {unknown[0]}, but this model's vocabulary has "
            f"{tokenizer.vocabulary_size} tokens",
            param="prompt",
        )
    return list(prompt)


def _answer_schema(output: JsonOutput | None) -> dict[str, Any]:
    if output is None:
        return {"type": "string"}
    if output.schema is None:
        return {"type": "object"}
    return require_supported(output.schema, where=RESPONSE_SCHEMA_PARAM)
