"""Request and response bodies of `/v1/embeddings` and `/v1/models`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_core import PydanticCustomError

from genai_service.openai_api.contract import OpenAIRequest

MAX_EMBEDDING_INPUTS = 2048
"""Inputs of one `/v1/embeddings` request at most, as OpenAI allows."""


TokenIds = Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]


class EmbeddingCreate(OpenAIRequest):
    model: str | None = None
    input: (
        str
        | Annotated[
            list[Annotated[str, Field(min_length=1)]],
            Field(min_length=1, json_schema_extra={"maxItems": MAX_EMBEDDING_INPUTS}),
        ]
        | TokenIds
        | Annotated[
            list[TokenIds],
            Field(min_length=1, json_schema_extra={"maxItems": MAX_EMBEDDING_INPUTS}),
        ]
    )
    """Text, texts, or token ids of the embedding model's own vocabulary (one input or many)."""
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[int, Field(ge=1)] | None = None
    """Accepted when it is the model's own dimension; no model here can shorten its vectors."""
    user: str | None = None
    """No effect here by definition."""
    truncate: bool = Field(
        default=False,
        description="genai-service extension: embed an input longer than the model reads "
        "from its first tokens (as many as the model reads) instead of refusing it with 400.",
    )

    @field_validator("input")
    @classmethod
    def _at_most_2048_inputs(
        cls, value: str | list[str] | list[int] | list[list[int]]
    ) -> str | list[str] | list[int] | list[list[int]]:
        if (
            isinstance(value, list)
            and value
            and not isinstance(value[0], int)
            and len(value) > MAX_EMBEDDING_INPUTS
        ):
            raise PydanticCustomError(
                "too_many_inputs",
                "at most {limit} inputs per request, not {count}",
                {"limit": MAX_EMBEDDING_INPUTS, "count": len(value)},
            )
        return value

    @property
    def texts(self) -> list[str] | None:
        """The inputs given as text, or `None` when they are token ids."""
        value = self.input
        if isinstance(value, str):
            return [value]
        if all(isinstance(item, str) for item in value):
            return [item for item in value if isinstance(item, str)]
        return None

    @property
    def token_ids(self) -> list[list[int]] | None:
        """The inputs given as token ids, or `None` when they are text."""
        value = self.input
        if isinstance(value, str) or self.texts is not None:
            return None
        if all(isinstance(item, int) for item in value):
            return [[item for item in value if isinstance(item, int)]]
        return [item for item in value if isinstance(item, list)]


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
