"""`/v1/chat/completions`: the request body, field by field, and the response shapes.

Every field of OpenAI's request is here: implemented, accepted as a no-op by definition, or
refused (see `contract`). The extension fields `top_k`, `min_p` and `repetition_penalty` are
vLLM's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from genai_service.openai_api.contract import OpenAIPart, OpenAIRequest, refused

MAX_STOP_SEQUENCES = 4
MAX_CHOICES = 16
MAX_TOP_LOGPROBS = 20
TEXT_ONLY = "the models of this server read and write text only"


class TextPart(OpenAIPart):
    type: Literal["text"]
    text: str


class RefusalPart(OpenAIPart):
    type: Literal["refusal"]
    refusal: str


class MediaPart(OpenAIPart):
    """Images, audio and files: part of OpenAI's request shape, refused here by name."""

    type: Literal["image_url", "input_audio", "file"]
    image_url: Any = None
    input_audio: Any = None
    file: Any = None

    @model_validator(mode="after")
    def _refuse(self) -> MediaPart:
        raise ValueError(f"{self.type} content is not supported: {TEXT_ONLY}")


UserPart = Annotated[TextPart | MediaPart, Field(discriminator="type")]
AssistantPart = Annotated[TextPart | RefusalPart, Field(discriminator="type")]


def _joined(content: str | list[Any] | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.text if isinstance(part, TextPart) else part.refusal for part in content)


class SystemMessage(OpenAIPart):
    role: Literal["system", "developer"]
    content: str | list[TextPart]
    name: str | None = None

    @property
    def text(self) -> str:
        return _joined(self.content)


class UserMessage(OpenAIPart):
    role: Literal["user"]
    content: str | list[UserPart]
    name: str | None = None

    @property
    def text(self) -> str:
        return _joined(self.content)


class FunctionCallSpec(OpenAIPart):
    name: str
    arguments: str


class ToolCallSpec(OpenAIPart):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallSpec


class AssistantHistoryMessage(OpenAIPart):
    role: Literal["assistant"]
    content: str | list[AssistantPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCallSpec] | None = None
    refusal: str | None = None
    audio: Annotated[Any, refused(TEXT_ONLY)] = None
    function_call: Annotated[Any, refused("use `tool_calls` instead")] = None

    @property
    def text(self) -> str:
        return _joined(self.content)

    @model_validator(mode="after")
    def _says_something(self) -> AssistantHistoryMessage:
        if self.content is None and not self.tool_calls:
            raise ValueError("an assistant message needs `content` or `tool_calls`")
        return self


class ToolMessage(OpenAIPart):
    role: Literal["tool"]
    content: str | list[TextPart]
    tool_call_id: str

    @property
    def text(self) -> str:
        return _joined(self.content)


class FunctionMessage(OpenAIPart):
    role: Literal["function"]
    content: str | None = None
    name: str

    @model_validator(mode="after")
    def _refuse(self) -> FunctionMessage:
        raise ValueError("the `function` role is not supported: use `tool` messages")


ChatCompletionMessage = Annotated[
    SystemMessage | UserMessage | AssistantHistoryMessage | ToolMessage | FunctionMessage,
    Field(discriminator="role"),
]


class StreamOptions(OpenAIPart):
    include_usage: bool = False
    include_obfuscation: bool | None = None
    """Accepted; no effect (this server adds no obfuscation padding to stream events)."""


class JsonSchemaFormat(OpenAIPart):
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    description: str | None = None
    schema_: Annotated[dict[str, Any] | None, Field(alias="schema")] = None
    strict: bool | None = None


class ResponseFormatText(OpenAIPart):
    type: Literal["text"]


class ResponseFormatJsonObject(OpenAIPart):
    type: Literal["json_object"]


class ResponseFormatJsonSchema(OpenAIPart):
    type: Literal["json_schema"]
    json_schema: JsonSchemaFormat


ResponseFormat = Annotated[
    ResponseFormatText | ResponseFormatJsonObject | ResponseFormatJsonSchema,
    Field(discriminator="type"),
]


class FunctionSpec(OpenAIPart):
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FunctionTool(OpenAIPart):
    type: Literal["function"]
    function: FunctionSpec


class NamedFunction(OpenAIPart):
    name: str


class NamedToolChoice(OpenAIPart):
    type: Literal["function"]
    function: NamedFunction


ToolChoiceOption = Literal["none", "auto", "required"] | NamedToolChoice


class ChatCompletionCreate(OpenAIRequest):
    model: str | None = Field(default=None, description="A name from GET /v1/models.")
    messages: Annotated[list[ChatCompletionMessage], Field(min_length=1)]
    # Sampling, honoured on every model.
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    stop: str | Annotated[list[str], Field(max_length=MAX_STOP_SEQUENCES)] | None = None
    seed: int | None = None
    n: Annotated[int, Field(ge=1, le=MAX_CHOICES)] | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    logit_bias: dict[str, Annotated[float, Field(ge=-100, le=100)]] | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=MAX_TOP_LOGPROBS)] | None = None
    # Output format and tools.
    response_format: ResponseFormat | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: ToolChoiceOption | None = None
    parallel_tool_calls: bool | None = None
    # Streaming.
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    # Extensions (vLLM's names).
    top_k: Annotated[int, Field(ge=-1)] | None = None
    min_p: Annotated[float, Field(ge=0, le=1)] | None = None
    repetition_penalty: Annotated[float, Field(gt=0, le=2)] | None = None
    # No effect here by definition: accepted and documented.
    user: str | None = None
    safety_identifier: str | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None
    prediction: dict[str, Any] | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    prompt_cache_options: dict[str, Any] | None = None
    verbosity: str | None = None
    # Refused: this server cannot honour them.
    audio: Annotated[Any, refused(TEXT_ONLY)] = None
    modalities: Annotated[Any, refused(TEXT_ONLY, neutral=(None, ["text"]))] = None
    reasoning_effort: Annotated[Any, refused("the models of this server do not reason")] = None
    web_search_options: Annotated[Any, refused("this server has no web search")] = None
    moderation: Annotated[Any, refused("this server has no moderation")] = None
    functions: Annotated[Any, refused("use `tools` instead")] = None
    function_call: Annotated[Any, refused("use `tool_choice` instead")] = None

    @field_validator("stop")
    @classmethod
    def _no_empty_stop(cls, value: str | list[str] | None) -> str | list[str] | None:
        values = [value] if isinstance(value, str) else value or []
        if any(not item for item in values):
            raise ValueError("stop sequences must not be empty")
        return value

    @field_validator("logit_bias")
    @classmethod
    def _token_ids(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for key in value or {}:
            if not key.isdigit():
                raise ValueError(f"the keys are token ids, and {key!r} is not one")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ChatCompletionCreate:
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("`top_logprobs` needs `logprobs: true`")
        if self.stream_options is not None and not self.stream:
            raise ValueError("`stream_options` needs `stream: true`")
        if self.tool_choice not in (None, "none") and not self.tools:
            raise ValueError("`tool_choice` needs `tools`")
        return self

    @property
    def stop_sequences(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class TopLogprobRead(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None


class TokenLogprobRead(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None
    top_logprobs: list[TopLogprobRead]


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprobRead] | None
    refusal: list[TokenLogprobRead] | None = None


class FunctionCallRead(BaseModel):
    name: str
    arguments: str


class ToolCallRead(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallRead


FinishReason = Literal["stop", "length", "tool_calls"]


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None = None
    tool_calls: list[ToolCallRead] | None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason
    logprobs: ChoiceLogprobs | None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage
    system_fingerprint: str | None = None


class FunctionCallDelta(BaseModel):
    name: str | None = None
    arguments: str | None = None


class ToolCallChunk(BaseModel):
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: FunctionCallDelta


class ChunkDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ToolCallChunk] | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: FinishReason | None = None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None
    system_fingerprint: str | None = None
