"""The least a FastAPI server does to forward `/v1/chat/completions` through the OpenAI SDK:
for bench.web_tier, the floor under what genai-service itself adds.

One route; a body model of the three fields the benchmark sends; the body sent on as it came,
with the SDK's `client.post` over the transport genai-service uses (aiohttp, the same
connection limits); the parsed reply returned. No authentication, guards, accounting,
middleware or access log. `UPSTREAM` is the upstream's base URL.
Run: `UPSTREAM=http://127.0.0.1:8100 python -m uvicorn bench.bare_proxy:app`.
"""

from __future__ import annotations

import os

import openai
from fastapi import FastAPI
from openai.types.chat import ChatCompletion
from pydantic import BaseModel

from genai_service.inference.openai_compatible.chat_model import AUTHENTICATED
from genai_service.inference.openai_compatible.endpoint import UPSTREAM_CONNECTION_LIMITS

client = openai.AsyncOpenAI(
    base_url=f"{os.environ['UPSTREAM']}/v1",
    api_key="unused",
    max_retries=0,
    http_client=openai.DefaultAioHttpClient(limits=UPSTREAM_CONNECTION_LIMITS),
)
app = FastAPI()


class Message(BaseModel):
    role: str
    content: str


class ChatRequest(BaseModel):
    model: str
    messages: list[Message]
    max_tokens: int | None = None


@app.get("/healthz")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/v1/chat/completions")
async def chat(body: ChatRequest) -> ChatCompletion:
    return await client.post(
        "/chat/completions",
        cast_to=ChatCompletion,
        body=body.model_dump(exclude_none=True),
        options=AUTHENTICATED,
    )
