"""The input items of `/v1/responses`: messages, function calls and their outputs.

The same items describe a stored conversation (`StoredResponse.context`): a response's output
items (an assistant message with `output_text`, `function_call`s) are valid input items, as on
OpenAI, where clients that keep their own history send them back as they got them.

A string stands for a list of one text part (message content, function output) or one user
message (`input`); validators turn the string into that list first, so every error points into
one shape.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Discriminator, Field, Tag, TypeAdapter
from pydantic_core import PydanticCustomError

from genai_service.openai_api.chat_schemas import TEXT_ONLY
from genai_service.openai_api.contract import UNSUPPORTED, OpenAIPart, refused

ItemStatus = Literal["in_progress", "completed", "incomplete"]
FUNCTION_TOOLS_ONLY = "this server runs function tools only"
_ITEM_REFUSALS = {
    "reasoning": "the models of this server do not reason",
    "item_reference": "items are not stored one by one here; use `previous_response_id`",
    "compaction": "this server does not compact conversations",
    "additional_tools": "send every tool in `tools`",
}


def text_as_parts(value: Any) -> Any:
    """`"text"` is `[{"type": "input_text", "text": "text"}]`."""
    return [{"type": "input_text", "text": value}] if isinstance(value, str) else value


def text_as_user_message(value: Any) -> Any:
    """`input: "text"` is one user message."""
    return (
        [{"type": "message", "role": "user", "content": value}] if isinstance(value, str) else value
    )


class InputText(OpenAIPart):
    type: Literal["input_text"]
    text: str
    prompt_cache_breakpoint: dict[str, Any] | None = None
    """Accepted; no effect (this server has no prompt cache to place breakpoints in)."""


class OutputText(OpenAIPart):
    """Text of an earlier assistant reply; its annotations and logprobs have no effect on input."""

    type: Literal["output_text"]
    text: str
    annotations: list[dict[str, Any]] | None = None
    logprobs: list[dict[str, Any]] | None = None


class Refusal(OpenAIPart):
    type: Literal["refusal"]
    refusal: str


_MEDIA = ("input_image", "input_file", "input_audio")


def _text_only(value: Any) -> Any:
    """Images, files and audio are part of OpenAI's request shape: refused here by name."""
    kind = value.get("type") if isinstance(value, dict) else None
    if kind in _MEDIA:
        raise PydanticCustomError(
            UNSUPPORTED,
            "{kind} content is not supported: {reason}",
            {"kind": kind, "reason": TEXT_ONLY},
        )
    return value


ContentPart = Annotated[
    Annotated[InputText | OutputText | Refusal, Field(discriminator="type")],
    BeforeValidator(_text_only),
]
FunctionOutputPart = Annotated[InputText, BeforeValidator(_text_only)]


def _joined(parts: list[Any]) -> str:
    return "".join(part.refusal if isinstance(part, Refusal) else part.text for part in parts)


class MessageItem(OpenAIPart):
    type: Literal["message"] = "message"
    role: Literal["user", "system", "developer", "assistant"]
    content: Annotated[list[ContentPart], BeforeValidator(text_as_parts)]
    id: str | None = None
    status: ItemStatus | None = None
    phase: Literal["commentary", "final_answer"] | None = None
    """Accepted; no effect (it labels an earlier reply, which the model reads the same way)."""

    @property
    def text(self) -> str:
        return _joined(self.content)


class FunctionCallItem(OpenAIPart):
    """A call the model made earlier, sent back (or kept) so its output can follow it."""

    type: Literal["function_call"]
    call_id: Annotated[str, Field(min_length=1)]
    name: str
    arguments: str
    id: str | None = None
    status: ItemStatus | None = None
    namespace: Annotated[Any, refused("tool namespaces are not supported")] = None
    caller: Annotated[
        Any, refused("only direct function calls exist here", neutral=(None, {"type": "direct"}))
    ] = None
    asynchronous: Annotated[
        Any,
        Field(alias="async"),
        refused("function calls run synchronously here", neutral=(None, False)),
    ] = None


class FunctionCallOutputItem(OpenAIPart):
    """What the caller's function returned for the call `call_id`."""

    type: Literal["function_call_output"]
    call_id: Annotated[str, Field(min_length=1)]
    output: Annotated[list[FunctionOutputPart], BeforeValidator(text_as_parts)]
    id: str | None = None
    status: ItemStatus | None = None
    name: str | None = None
    """Accepted; the name is taken from the call this output answers."""
    namespace: Annotated[Any, refused("tool namespaces are not supported")] = None
    caller: Annotated[
        Any, refused("only direct function calls exist here", neutral=(None, {"type": "direct"}))
    ] = None

    @property
    def text(self) -> str:
        return _joined(self.output)


def _known_item_type(value: Any) -> Any:
    """Every item type but messages and function calls (hosted tool calls, reasoning, ...) is
    refused by name."""
    kind = value.get("type", "message") if isinstance(value, dict) else "message"
    if not isinstance(kind, str):
        raise PydanticCustomError("string_type", "an input item's type must be a string")
    if kind not in ("message", "function_call", "function_call_output"):
        reason = _ITEM_REFUSALS.get(kind, FUNCTION_TOOLS_ONLY)
        raise PydanticCustomError(
            UNSUPPORTED,
            "input items of type '{kind}' are not supported: {reason}",
            {"kind": kind, "reason": reason},
        )
    return value


def _item_type(value: Any) -> str:
    kind = value.get("type", "message") if isinstance(value, dict) else getattr(value, "type", "")
    return str(kind)


InputItem = Annotated[
    Annotated[
        Annotated[MessageItem, Tag("message")]
        | Annotated[FunctionCallItem, Tag("function_call")]
        | Annotated[FunctionCallOutputItem, Tag("function_call_output")],
        Discriminator(_item_type),
    ],
    BeforeValidator(_known_item_type),
]
InputItems = Annotated[list[InputItem], BeforeValidator(text_as_user_message), Field(min_length=1)]

stored_items = TypeAdapter(list[InputItem])
"""Reads the items of a stored context back."""


def dumped(
    items: list[MessageItem | FunctionCallItem | FunctionCallOutputItem],
) -> list[dict[str, Any]]:
    """Items as JSON values, the way they are stored."""
    return [item.model_dump(mode="json", by_alias=True, exclude_none=True) for item in items]
