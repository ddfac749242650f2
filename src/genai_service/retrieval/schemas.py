from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=4000)
    k: int | None = Field(default=None, ge=1, le=100, description="Default: the configured k.")
    documents: list[uuid.UUID] | None = Field(
        default=None, max_length=1000, description="Only these documents; default: all of them."
    )


class SearchHit(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    document_id: uuid.UUID
    filename: str
    chunk_index: int
    page: int | None = Field(description="1-based page of the chunk's start (PDF).")
    start: int
    end: int = Field(description="`text` is the document's extracted text from `start` to `end`.")
    score: float = Field(description="Cosine similarity to the query.")
    text: str


class SearchResponse(BaseModel):
    results: list[SearchHit]
