"""The model gateway: models by name, handed out wrapped for a caller and a purpose.

Every model call of the service goes through here: the OpenAI surface, `/chat`, conversation
turns and their titles, retrieval's question and ingestion's chunks. Guards (budgets, rate
limits, usage) are attached once, here, so no endpoint can call a model unaccounted. Counting
tokens, readiness and the context window are not model calls: they stay on the registry.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence

from genai_service.gateway.caller import Caller, Purpose
from genai_service.gateway.guarded_embeddings import (
    GuardedEmbeddingModel,
    GuardedTokenIdEmbeddingModel,
)
from genai_service.gateway.guarded_models import CallContext, GuardedChatModel, Guarding
from genai_service.gateway.guards import Guard
from genai_service.gateway.metrics import ModelCallMetrics
from genai_service.inference.base import TokenIdEmbedder
from genai_service.inference.registry import ModelRegistry


class ModelGateway:
    def __init__(
        self,
        models: ModelRegistry,
        guards: Sequence[Guard] = (),
        metrics: ModelCallMetrics | None = None,
    ) -> None:
        """`guards`: admitted in this order, settled in reverse; `metrics`: counts every call."""
        self.models = models
        self.guarding = Guarding(tuple(guards), metrics or ModelCallMetrics())

    def chat_name(self, name: str | None) -> str:
        return name or self.models.default_chat_name

    def embedding_name(self, name: str | None) -> str:
        return name or self.models.default_embedding_name

    def chat(
        self,
        caller: Caller,
        purpose: Purpose,
        name: str | None = None,
        *,
        headers: MutableMapping[str, str] | None = None,
    ) -> GuardedChatModel:
        """The chat model `name` (the default one when `None`) for `caller`'s calls; `headers`
        receives the guards' response headers when a call is admitted."""
        key = self.chat_name(name)
        context = CallContext(caller, purpose, self.guarding, headers)
        return GuardedChatModel(self.models.chat(key), name=key, context=context)

    def embedding(
        self,
        caller: Caller,
        purpose: Purpose,
        name: str | None = None,
        *,
        headers: MutableMapping[str, str] | None = None,
    ) -> GuardedEmbeddingModel:
        key = self.embedding_name(name)
        model = self.models.embedding(key)
        context = CallContext(caller, purpose, self.guarding, headers)
        if isinstance(model, TokenIdEmbedder):
            return GuardedTokenIdEmbeddingModel(model, model, name=key, context=context)
        return GuardedEmbeddingModel(model, name=key, context=context)
