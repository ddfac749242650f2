"""`/v1/completions`: each prompt continued `n` times, as OpenAI's legacy completions answer."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, MutableMapping, Sequence

from genai_service.gateway.caller import Caller
from genai_service.gateway.gateway import ModelGateway
from genai_service.inference.base import (
    ChatChunk,
    ChatModel,
    ChatRequest,
    ChatResult,
    SamplingParams,
    TokenLogprob,
    Usage,
    complete_all,
    prime_all,
)
from genai_service.kit.async_iterators import merged
from genai_service.kit.random_ids import random_hex
from genai_service.openai_api.chat_schemas import CompletionUsage
from genai_service.openai_api.completion_schemas import (
    DEFAULT_MAX_TOKENS,
    Completion,
    CompletionChoice,
    CompletionCreate,
    LegacyLogprobs,
)


def _requests(body: CompletionCreate) -> list[ChatRequest]:
    """Every (prompt, choice) pair, in OpenAI's order: choice `i` of prompt `p` is at
    `p * n + i`. A seeded request gives choice `i` the seed + i."""
    n = body.n or 1
    requests: list[ChatRequest] = []
    for prompt in body.prompts:
        for index in range(n):
            seed = None if body.seed is None else body.seed + index
            sampling = SamplingParams(
                max_tokens=body.max_tokens or DEFAULT_MAX_TOKENS,
                temperature=1.0 if body.temperature is None else body.temperature,
                top_p=1.0 if body.top_p is None else body.top_p,
                stop=body.stop_sequences,
                seed=seed,
                presence_penalty=body.presence_penalty or 0.0,
                frequency_penalty=body.frequency_penalty or 0.0,
                repetition_penalty=body.repetition_penalty or 1.0,
                top_k=max(body.top_k or 0, 0),
                min_p=body.min_p or 0.0,
                logit_bias=tuple((int(k), bias) for k, bias in (body.logit_bias or {}).items()),
                logprobs=body.logprobs,
            )
            requests.append(ChatRequest(messages=(), sampling=sampling, prompt=prompt))
    return requests


def _usage(usages: Sequence[Usage], prompts: int, n: int) -> CompletionUsage:
    """Each prompt counted once, however many choices continue it."""
    prompt = sum(usage.prompt_tokens for usage in usages[::n][:prompts])
    completion = sum(usage.completion_tokens for usage in usages)
    return CompletionUsage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


def _legacy_logprobs(logprobs: Sequence[TokenLogprob], offset: int) -> LegacyLogprobs:
    offsets: list[int] = []
    for entry in logprobs:
        offsets.append(offset)
        offset += len(entry.token)
    return LegacyLogprobs(
        tokens=[entry.token for entry in logprobs],
        token_logprobs=[entry.logprob for entry in logprobs],
        top_logprobs=[{top.token: top.logprob for top in entry.top} for entry in logprobs],
        text_offset=offsets,
    )


class CompletionService:
    def __init__(
        self,
        gateway: ModelGateway,
        caller: Caller,
        headers: MutableMapping[str, str] | None = None,
    ) -> None:
        """`headers`: receives the rate-limit headers of the calls as they are admitted."""
        self.gateway = gateway
        self.caller = caller
        self.headers = headers

    def _model(self, body: CompletionCreate) -> tuple[str, ChatModel]:
        model = self.gateway.chat(self.caller, "completion", body.model, headers=self.headers)
        return model.name, model

    async def complete(self, body: CompletionCreate) -> Completion:
        name, model = self._model(body)
        requests = _requests(body)
        results = await complete_all(model, requests)
        return Completion(
            id=f"cmpl-{random_hex()}",
            created=int(time.time()),
            model=name,
            choices=[
                self._choice(index, request, result, body)
                for index, (request, result) in enumerate(zip(requests, results, strict=True))
            ],
            usage=_usage([r.usage for r in results], len(body.prompts), body.n or 1),
        )

    @staticmethod
    def _choice(
        index: int, request: ChatRequest, result: ChatResult, body: CompletionCreate
    ) -> CompletionChoice:
        prefix = request.prompt if body.echo and isinstance(request.prompt, str) else ""
        return CompletionChoice(
            index=index,
            text=prefix + result.text,
            logprobs=_legacy_logprobs(result.logprobs, 0) if body.logprobs is not None else None,
            finish_reason="length" if result.finish_reason == "length" else "stop",
        )

    async def stream(self, body: CompletionCreate) -> AsyncIterator[Completion]:
        """Open every stream (admission errors raise here), then yield OpenAI chunks."""
        name, model = self._model(body)
        requests = _requests(body)
        streams = await prime_all([model.stream(request) for request in requests])
        return self._chunks(name, requests, streams, body)

    async def _chunks(
        self,
        name: str,
        requests: list[ChatRequest],
        streams: list[AsyncIterator[ChatChunk]],
        body: CompletionCreate,
    ) -> AsyncIterator[Completion]:
        completion_id, created = f"cmpl-{random_hex()}", int(time.time())

        def chunk(
            choices: list[CompletionChoice], usage: CompletionUsage | None = None
        ) -> Completion:
            return Completion(
                id=completion_id, created=created, model=name, choices=choices, usage=usage
            )

        if body.echo:
            echoed = [
                CompletionChoice(index=i, text=request.prompt, finish_reason=None)
                for i, request in enumerate(requests)
                if isinstance(request.prompt, str)
            ]
            if echoed:
                yield chunk(echoed)
        offsets = [0] * len(streams)
        usages: dict[int, Usage] = {}
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        async with merged(streams) as pieces:
            async for index, piece in pieces:
                logprobs = None
                if body.logprobs is not None and piece.logprobs:
                    logprobs = _legacy_logprobs(piece.logprobs, offsets[index])
                offsets[index] += len(piece.text)
                finish = None
                if piece.finish_reason is not None:
                    usages[index] = piece.usage or Usage(0, 0)
                    finish = "length" if piece.finish_reason == "length" else "stop"
                if piece.text or logprobs or finish:
                    text_choice = CompletionChoice(
                        index=index, text=piece.text, logprobs=logprobs, finish_reason=finish
                    )
                    yield chunk([text_choice])
        if include_usage:
            ordered = [usages.get(i, Usage(0, 0)) for i in range(len(streams))]
            yield chunk([], _usage(ordered, len(body.prompts), body.n or 1))
