"""`/v1/embeddings` and `/v1/models`: OpenAI-shaped requests to our protocols and back."""

from __future__ import annotations

import base64
import struct
import time
from collections.abc import MutableMapping, Sequence

from genai_service.gateway.caller import Caller
from genai_service.gateway.gateway import ModelGateway
from genai_service.inference.base import EmbeddingModel, ModelNotFound, TokenIdEmbedder
from genai_service.inference.registry import ModelRegistry
from genai_service.kit.errors import BadRequest
from genai_service.openai_api.errors import EmbeddingInputTooLong, EmbeddingRequestTooLarge
from genai_service.openai_api.schemas import (
    Embedding,
    EmbeddingCreate,
    EmbeddingList,
    EmbeddingUsage,
    ModelCard,
    ModelList,
)


def _encode_base64(vector: Sequence[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


class OpenAIService:
    def __init__(
        self,
        models: ModelRegistry,
        gateway: ModelGateway,
        caller: Caller,
        *,
        max_embedding_request_tokens: int,
        headers: MutableMapping[str, str] | None = None,
    ) -> None:
        """`headers`: receives the rate-limit headers of the calls as they are admitted."""
        self.models = models
        self.gateway = gateway
        self.caller = caller
        self.max_embedding_request_tokens = max_embedding_request_tokens
        self.headers = headers

    def _model_name(self, requested: str | None, *, chat: bool) -> str:
        if requested:
            return requested
        return self.models.default_chat_name if chat else self.models.default_embedding_name

    async def embed(self, body: EmbeddingCreate) -> EmbeddingList:
        model = self.gateway.embedding(self.caller, "embeddings", body.model, headers=self.headers)
        name = model.name
        if body.dimensions is not None and body.dimensions != model.dimension:
            raise BadRequest(
                f"model {name!r} gives {model.dimension}-dimensional vectors and cannot shorten "
                f"them to {body.dimensions}; leave `dimensions` out",
                param="dimensions",
            )
        texts = body.texts
        if texts is not None:
            counts = await model.count_tokens(texts)
            tokens = await self._embedding_tokens(model, name, body, counts)
            vectors = await model.embed(texts)
        else:
            ids = body.token_ids or []
            tokens, vectors = await self._embed_token_ids(model, name, body, ids)
        encode = _encode_base64 if body.encoding_format == "base64" else list
        return EmbeddingList(
            data=[Embedding(index=i, embedding=encode(v)) for i, v in enumerate(vectors)],
            model=name,
            usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens),
        )

    async def _embed_token_ids(
        self, model: EmbeddingModel, name: str, body: EmbeddingCreate, inputs: list[list[int]]
    ) -> tuple[int, list[list[float]]]:
        if not isinstance(model, TokenIdEmbedder):
            raise BadRequest(f"model {name!r} takes text only, not token ids", param="input")
        size = model.vocabulary_size
        if size is not None:
            for index, ids in enumerate(inputs):
                if max(ids) >= size:
                    raise BadRequest(
                        f"input {index} has token {max(ids)}, but the vocabulary of model "
                        f"{name!r} has {size} tokens (ids 0 to {size - 1}): token ids are the "
                        "embedding model's own, not another tokenizer's",
                        param="input",
                    )
        counts = [len(ids) + model.special_tokens for ids in inputs]
        tokens = await self._embedding_tokens(model, name, body, counts)
        keep = model.max_input_tokens - model.special_tokens
        return tokens, await model.embed_token_ids([ids[:keep] for ids in inputs])

    async def _embedding_tokens(
        self, model: EmbeddingModel, name: str, body: EmbeddingCreate, counts: list[int]
    ) -> int:
        """The tokens the model will read of the inputs, counted before any is embedded: `400`
        for an input longer than the model reads (unless `truncate`) and for a request over the
        token limit."""
        window = model.max_input_tokens
        too_long = [index for index, count in enumerate(counts) if count > window]
        if too_long and not body.truncate:
            which = "The input" if isinstance(body.input, str) else f"Input {too_long[0]}"
            others = f" (and {len(too_long) - 1} more)" if len(too_long) > 1 else ""
            raise EmbeddingInputTooLong(
                f"{which}{others} is longer than the {window} tokens model {name!r} reads "
                '(special tokens included). Shorten it, or send "truncate": true to embed the '
                f"first {window} tokens of each input.",
                param="input",
            )
        total = sum(min(count, window) for count in counts)
        if total > self.max_embedding_request_tokens:
            raise EmbeddingRequestTooLarge(
                f"The inputs take {total} tokens; a request may embed at most "
                f"{self.max_embedding_request_tokens}. Send them in smaller requests.",
                param="input",
            )
        return total

    def list_models(self) -> ModelList:
        created = int(time.time())
        names = [*self.models.chat_names(), *self.models.embedding_names()]
        return ModelList(data=[ModelCard(id=name, created=created) for name in names])

    def get_model(self, name: str) -> ModelCard:
        if name not in (*self.models.chat_names(), *self.models.embedding_names()):
            raise ModelNotFound(f"model {name!r} does not exist")
        return ModelCard(id=name, created=int(time.time()))
