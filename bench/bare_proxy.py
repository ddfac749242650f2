"""A plain FastAPI server forwarding `/v1/chat/completions` through the OpenAI SDK, the SDK used
as its documentation shows: for bench.web_tier, the yardstick for what genai-service adds on top
of FastAPI and the SDK.

One route; a body model of the fields the benchmark sends; the body sent on as it came, with
the SDK's `client.post` over its aiohttp transport (with genai-service's connection limits);
the parsed reply returned, or with `"stream": true` each parsed chunk written as one server-sent
event as it comes, then `[DONE]`. No authentication, guards, accounting, middleware or access
log. `UPSTREAM` is the upstream's base URL.
Run: `UPSTREAM=http://127.0.0.1:8100 python -m uvicorn bench.bare_proxy:app`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import httpx2
import openai
from fastapi.sse import EventSourceResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from bench.plain_proxy import ChatRequest, plain_app

AUTHENTICATED: openai.RequestOptions = {"security": {"bearer_auth": True}}
"""The client's key as a bearer token, as the SDK's typed methods send it."""
client = openai.AsyncOpenAI(
    base_url=f"{os.environ['UPSTREAM']}/v1",
    api_key="unused",
    max_retries=0,
    # Idle connections kept 4 s: uvicorn, serving the upstream, closes them after 5.
    http_client=openai.DefaultAioHttpClient(
        limits=httpx2.Limits(
            max_connections=1000, max_keepalive_connections=100, keepalive_expiry=4.0
        )
    ),
)
app = plain_app()


@app.post("/v1/chat/completions", response_model=ChatCompletion)
async def chat(body: ChatRequest) -> ChatCompletion | EventSourceResponse:
    if not body.stream:
        return await client.post(
            "/chat/completions",
            cast_to=ChatCompletion,
            body=body.model_dump(exclude_none=True),
            options=AUTHENTICATED,
        )
    chunks = await client.post(
        "/chat/completions",
        cast_to=ChatCompletionChunk,
        body=body.model_dump(exclude_none=True),
        options=AUTHENTICATED,
        stream=True,
        stream_cls=openai.AsyncStream[ChatCompletionChunk],
    )
    return EventSourceResponse(_events(chunks))


async def _events(chunks: openai.AsyncStream[ChatCompletionChunk]) -> AsyncIterator[bytes]:
    async with chunks:
        async for chunk in chunks:
            yield b"data: %s\n\n" % chunk.model_dump_json().encode()
    yield b"data: [DONE]\n\n"
