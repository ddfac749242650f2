"""Errors of the OpenAI-compatible API's own limits."""

from __future__ import annotations

from genai_service.inference.base import PromptTooLong
from genai_service.kit.errors import BadRequest


class EmbeddingInputTooLong(PromptTooLong):
    title = "Input too long"


class EmbeddingRequestTooLarge(BadRequest):
    title = "Too many tokens in one request"
    slug = "max-tokens-per-request"
