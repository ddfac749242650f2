"""`POST /v1/responses`: the request body, field by field.

Every field of OpenAI's `ResponseCreateParams` is here: implemented, accepted as a no-op by
definition, or refused (see `openai_api.contract`); docs/models.md lists which is which.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Discriminator, Field, Tag, field_validator, model_validator
from pydantic_core import PydanticCustomError

from genai_service.openai_api.chat_schemas import MAX_TOP_LOGPROBS, JsonSchemaFormat
from genai_service.openai_api.contract import UNSUPPORTED, OpenAIPart, OpenAIRequest, refused
from genai_service.openai_api.responses.items import FUNCTION_TOOLS_ONLY, InputItems

LOGPROBS_INCLUDE = "message.output_text.logprobs"
Includable = Literal[
    "message.output_text.logprobs",
    # The items these would add to a response never occur here: no effect.
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "message.input_image.image_url",
    "computer_call_output.output.image_url",
    "code_interpreter_call.outputs",
    "reasoning.encrypted_content",
]
MAX_METADATA_PAIRS = 16
FunctionName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class FunctionToolSpec(OpenAIPart):
    type: Literal["function"]
    name: FunctionName
    parameters: dict[str, Any] | None = None
    strict: bool | None = None
    """Honoured either way: calls are constrained to the schema on the embedded model."""
    description: str | None = None
    output_schema: dict[str, Any] | None = None
    """Accepted; no effect (the model is not told what the function returns)."""
    allowed_callers: Annotated[
        Any,
        refused("only direct function calls exist here", neutral=(None, ["direct"])),
    ] = None
    asynchronous: Annotated[
        Any,
        Field(alias="async"),
        refused("function calls run synchronously here", neutral=(None, False)),
    ] = None
    defer_loading: Annotated[
        Any, refused("this server has no tool search", neutral=(None, False))
    ] = None


def _function_tools_only(value: Any) -> Any:
    """OpenAI's built-in tools (web search, file search, MCP, ...) are refused by name."""
    kind = value.get("type") if isinstance(value, dict) else None
    if kind is not None and kind != "function":
        raise PydanticCustomError(
            UNSUPPORTED,
            "tools of type '{kind}' are not supported: {reason}",
            {"kind": kind, "reason": FUNCTION_TOOLS_ONLY},
        )
    return value


ToolSpec = Annotated[FunctionToolSpec, BeforeValidator(_function_tools_only)]


class FunctionChoice(OpenAIPart):
    type: Literal["function"]
    name: str


class AllowedFunction(OpenAIPart):
    type: Literal["function"]
    name: str


class AllowedToolsChoice(OpenAIPart):
    """Only these tools may be called this time; the others stay in `tools` (and in the cache
    of a provider that has one)."""

    type: Literal["allowed_tools"]
    mode: Literal["auto", "required"]
    tools: Annotated[list[AllowedFunction], Field(min_length=1)]


def _function_choice_only(value: Any) -> Any:
    kind = value.get("type") if isinstance(value, dict) else None
    if kind is not None and kind not in ("function", "allowed_tools"):
        raise PydanticCustomError(
            UNSUPPORTED,
            "tool_choice of type '{kind}' is not supported: {reason}",
            {"kind": kind, "reason": FUNCTION_TOOLS_ONLY},
        )
    return value


def _tool_choice_kind(value: Any) -> str:
    if isinstance(value, str):
        return "option"
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return str(kind)


ToolChoiceSpec = Annotated[
    Annotated[
        Annotated[Literal["none", "auto", "required"], Tag("option")]
        | Annotated[FunctionChoice, Tag("function")]
        | Annotated[AllowedToolsChoice, Tag("allowed_tools")],
        Discriminator(_tool_choice_kind),
    ],
    BeforeValidator(_function_choice_only),
]


class TextFormat(OpenAIPart):
    type: Literal["text"]


class JsonObjectFormat(OpenAIPart):
    type: Literal["json_object"]


class JsonSchemaTextFormat(JsonSchemaFormat):
    """Chat's `json_schema` spec, flattened into `text.format` as the Responses API has it."""

    type: Literal["json_schema"]
    schema_: Annotated[dict[str, Any], Field(alias="schema")]


OutputFormat = Annotated[
    TextFormat | JsonObjectFormat | JsonSchemaTextFormat, Field(discriminator="type")
]


class TextConfig(OpenAIPart):
    format: OutputFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None
    """Accepted; no effect (these models have no verbosity setting)."""


class StreamOptions(OpenAIPart):
    include_obfuscation: bool | None = None
    """Accepted; no effect (this server adds no obfuscation padding to stream events)."""


class ReasoningOptions(OpenAIPart):
    """Accepted only empty (or `effort: "none"`): the models of this server do not reason."""

    effort: str | None = None
    summary: str | None = None
    generate_summary: str | None = None
    context: str | None = None
    mode: str | None = None

    @model_validator(mode="after")
    def _asks_nothing(self) -> ReasoningOptions:
        asked = self.model_dump(exclude_none=True)
        if asked and asked != {"effort": "none"}:
            raise ValueError("reasoning is not supported: the models of this server do not reason")
        return self


Metadata = Annotated[
    dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=512)]],
    Field(max_length=MAX_METADATA_PAIRS),
]


class ResponseCreate(OpenAIRequest):
    model: str | None = Field(default=None, description="A name from GET /v1/models.")
    input: InputItems
    instructions: str | None = None
    previous_response_id: Annotated[str, Field(min_length=1)] | None = None
    store: bool | None = None
    """Defaults to true, as on OpenAI: the response is kept for `GET` and continuations."""
    # Sampling.
    max_output_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=MAX_TOP_LOGPROBS)] | None = None
    include: list[Includable] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    # Output format and tools.
    text: TextConfig | None = None
    tools: list[ToolSpec] | None = None
    tool_choice: ToolChoiceSpec | None = None
    parallel_tool_calls: bool | None = None
    # Streaming.
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    # Kept with the response and returned with it.
    metadata: Metadata | None = None
    user: str | None = None
    safety_identifier: str | None = None
    # No effect here by definition: accepted and documented.
    service_tier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    prompt_cache_options: dict[str, Any] | None = None
    max_tool_calls: Annotated[int, Field(ge=1)] | None = None
    """Limits calls of built-in tools, which this server has none of."""
    image: dict[str, Any] | None = None
    """Image context compression: there are no images to compress (image input is refused)."""
    reasoning: ReasoningOptions | None = None
    # Refused: this server cannot honour them.
    background: Annotated[
        Any, refused("this server has no background mode", neutral=(None, False))
    ] = None
    background_options: Annotated[Any, refused("this server has no background mode")] = None
    conversation: Annotated[
        Any, refused("use `previous_response_id` to continue a conversation")
    ] = None
    context_management: Annotated[
        Any, refused("this server does not compact conversations", neutral=(None, []))
    ] = None
    prompt: Annotated[Any, refused("this server has no stored prompt templates")] = None
    moderation: Annotated[Any, refused("this server has no moderation")] = None
    access_programs: Annotated[
        Any, refused("this server has no access programs", neutral=(None, {"cyber": "standard"}))
    ] = None

    @field_validator("metadata")
    @classmethod
    def _metadata_keys(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None and any(not key for key in value):
            raise ValueError("metadata keys must not be empty")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ResponseCreate:
        if self.stream_options is not None and not self.stream:
            raise ValueError("`stream_options` needs `stream: true`")
        if self.tool_choice not in (None, "none") and not self.tools:
            raise ValueError("`tool_choice` needs `tools`")
        return self

    @property
    def wants_logprobs(self) -> bool:
        """`include` asks for them; `top_logprobs` alone does too, or it would have no effect."""
        return LOGPROBS_INCLUDE in (self.include or []) or self.top_logprobs is not None
