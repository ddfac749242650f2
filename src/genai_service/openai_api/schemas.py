"""Request and response bodies of `/v1/embeddings` and `/v1/models`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

MAX_EMBEDDING_INPUTS = 2048
"""Inputs of one `/v1/embeddings` request at most, as OpenAI allows."""


class EmbeddingCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    input: (
        str
        | Annotated[
            list[Annotated[str, Field(min_length=1)]],
            Field(min_length=1, json_schema_extra={"maxItems": MAX_EMBEDDING_INPUTS}),
        ]
    )
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = None
    truncate: bool = Field(
        default=False,
        description="genai-service extension: embed an input longer than the model reads "
        "from its first tokens (as many as the model reads) instead of refusing it with 400.",
    )

    @field_validator("input")
    @classmethod
    def _at_most_2048_inputs(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and len(value) > MAX_EMBEDDING_INPUTS:
            raise PydanticCustomError(
                "too_many_inputs",
                "at most {limit} inputs per request, not {count}",
                {"limit": MAX_EMBEDDING_INPUTS, "count": len(value)},
            )
        return value

    @property
    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else self.input


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "genai-service"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
