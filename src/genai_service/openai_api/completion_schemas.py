"""`/v1/completions`, OpenAI's legacy text completions: the request, field by field, and replies.

Eval harnesses and autocompletion tools still send it. The prompt is continued as it is, with
no chat template.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from genai_service.openai_api.chat_schemas import (
    MAX_CHOICES,
    MAX_STOP_SEQUENCES,
    CompletionUsage,
    StreamOptions,
)
from genai_service.openai_api.contract import OpenAIRequest, refused

MAX_LEGACY_LOGPROBS = 5
MAX_PROMPTS = 64
DEFAULT_MAX_TOKENS = 16
"""OpenAI's default for this endpoint (unlike chat completions)."""

TokenIds = Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]
Prompt = (
    str
    | Annotated[list[str], Field(min_length=1, max_length=MAX_PROMPTS)]
    | TokenIds
    | Annotated[list[TokenIds], Field(min_length=1, max_length=MAX_PROMPTS)]
)


class CompletionCreate(OpenAIRequest):
    model: str | None = Field(default=None, description="A name from GET /v1/models.")
    prompt: Prompt
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    n: Annotated[int, Field(ge=1, le=MAX_CHOICES)] | None = None
    best_of: Annotated[int, Field(ge=1, le=MAX_CHOICES)] | None = None
    stop: str | Annotated[list[str], Field(max_length=MAX_STOP_SEQUENCES)] | None = None
    seed: int | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    logit_bias: dict[str, Annotated[float, Field(ge=-100, le=100)]] | None = None
    logprobs: Annotated[int, Field(ge=0, le=MAX_LEGACY_LOGPROBS)] | None = None
    echo: bool | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    # Extensions (vLLM's names).
    top_k: Annotated[int, Field(ge=-1)] | None = None
    min_p: Annotated[float, Field(ge=0, le=1)] | None = None
    repetition_penalty: Annotated[float, Field(gt=0, le=2)] | None = None
    # No effect here by definition.
    user: str | None = None
    # Refused: this server cannot honour it.
    suffix: Annotated[Any, refused("fill-in-the-middle is not supported", neutral=(None, ""))] = (
        None
    )

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
    def _consistent(self) -> CompletionCreate:
        if self.best_of is not None and self.best_of != (self.n or 1):
            raise ValueError(
                "`best_of` other than `n` is not supported: every generated choice is returned"
            )
        if self.echo and self.logprobs is not None:
            raise ValueError("`echo` with `logprobs` is not supported (no prompt logprobs)")
        if self.stream_options is not None and not self.stream:
            raise ValueError("`stream_options` needs `stream: true`")
        return self

    @property
    def prompts(self) -> list[str | tuple[int, ...]]:
        """One entry per prompt: a text or the token ids of one."""
        prompt = self.prompt
        if isinstance(prompt, str):
            return [prompt]
        prompts: list[str | tuple[int, ...]] = []
        ids: list[int] = []
        for item in prompt:
            if isinstance(item, int):
                ids.append(item)
            else:
                prompts.append(item if isinstance(item, str) else tuple(item))
        return [tuple(ids)] if ids else prompts

    @property
    def stop_sequences(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


class LegacyLogprobs(BaseModel):
    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]] | None
    text_offset: list[int]


class CompletionChoice(BaseModel):
    index: int
    text: str
    logprobs: LegacyLogprobs | None = None
    finish_reason: Literal["stop", "length"] | None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: CompletionUsage | None = None
    system_fingerprint: str | None = None
