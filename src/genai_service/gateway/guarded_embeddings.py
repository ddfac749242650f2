"""Embedding models wrapped for one caller and purpose: each call admitted by the guards with
its input's tokens and settled when it ends; or many calls under one reservation (a document's
chunks, `GuardedEmbeddingModel.reserved`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

from genai_service.gateway.guarded_models import CallContext, GuardedCall
from genai_service.gateway.guards import CallStatus, ModelCall
from genai_service.inference.base import EmbeddingModel, TokenIdEmbedder
from genai_service.kit.errors import AppError


async def input_tokens(model: EmbeddingModel, texts: Sequence[str]) -> int:
    """What embedding `texts` costs: the tokens the model reads of each (its window at most)."""
    counts = await model.count_tokens(texts)
    window = model.max_input_tokens
    return sum(min(count, window) for count in counts)


class GuardedEmbeddingModel:
    def __init__(self, model: EmbeddingModel, *, name: str, context: CallContext) -> None:
        self._model = model
        self.name = name
        self._context = context

    @property
    def dimension(self) -> int:
        return self._model.dimension

    @property
    def max_input_tokens(self) -> int:
        return self._model.max_input_tokens

    @property
    def ready(self) -> bool:
        return self._model.ready

    async def start(self) -> None:
        await self._model.start()

    async def close(self) -> None:
        await self._model.close()

    async def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return await self._model.count_tokens(texts)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        tokens = await input_tokens(self._model, texts)
        async with self._guarded(tokens):
            return await self._model.embed(texts)

    @contextlib.asynccontextmanager
    async def reserved(self, tokens: int) -> AsyncIterator[ReservedEmbeddings]:
        """One call admitted for `tokens` input tokens, drawn on by several `embed` calls:
        a document's chunks, reserved as a whole before any is embedded. Settled on exit with
        the tokens embedded (also when it failed or was cancelled part way)."""
        guarded = self._context.new_call()
        await guarded.admit(self._context.model_call(self.name, "embedding", tokens))
        embeddings = ReservedEmbeddings(self._model, tokens)
        status: CallStatus = "cancelled"
        try:
            yield embeddings
            status = "completed"
        except Exception:
            status = "failed"
            raise
        finally:
            await guarded.settle(status, embeddings.used, 0)

    def _guarded(self, tokens: int) -> _EmbeddingCall:
        return _EmbeddingCall(
            self._context.new_call(), self._context.model_call(self.name, "embedding", tokens)
        )


class GuardedTokenIdEmbeddingModel(GuardedEmbeddingModel):
    """For embedding models that also take token ids (`TokenIdEmbedder`)."""

    def __init__(
        self,
        model: TokenIdEmbedder,
        inner: EmbeddingModel,
        *,
        name: str,
        context: CallContext,
    ) -> None:
        super().__init__(inner, name=name, context=context)
        self._ids_model = model

    @property
    def vocabulary_size(self) -> int | None:
        return self._ids_model.vocabulary_size

    @property
    def special_tokens(self) -> int:
        return self._ids_model.special_tokens

    async def embed_token_ids(self, inputs: Sequence[Sequence[int]]) -> list[list[float]]:
        tokens = sum(len(ids) + self.special_tokens for ids in inputs)
        async with self._guarded(tokens):
            return await self._ids_model.embed_token_ids(inputs)


class ReservationTooSmall(AppError):
    """More was embedded under a reservation than it held: the count it was made from was
    wrong. Refused rather than charged past the reservation."""

    status_code = 500
    title = "Reservation too small"
    slug = "reservation-too-small"


class ReservedEmbeddings:
    """Embedding calls under one reservation (`GuardedEmbeddingModel.reserved`)."""

    def __init__(self, model: EmbeddingModel, reserved: int) -> None:
        self._model = model
        self.reserved = reserved
        self.used = 0

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        tokens = await input_tokens(self._model, texts)
        if self.used + tokens > self.reserved:
            raise ReservationTooSmall(
                f"embedding {tokens} more tokens would pass the {self.reserved} reserved "
                f"({self.used} used)"
            )
        vectors = await self._model.embed(texts)
        self.used += tokens
        return vectors


class _EmbeddingCall:
    """`async with`: admitted on entry, settled on exit with the input's tokens (or nothing)."""

    def __init__(self, guarded: GuardedCall, call: ModelCall) -> None:
        self._guarded = guarded
        self._call = call

    async def __aenter__(self) -> None:
        await self._guarded.admit(self._call)

    async def __aexit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            await self._guarded.settle("completed", self._call.prompt_tokens, 0)
        elif issubclass(kind, Exception):
            await self._guarded.settle("failed", 0, 0)
        else:
            await self._guarded.settle("cancelled", 0, 0)
