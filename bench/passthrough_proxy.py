"""The least a FastAPI server forwarding `/v1/chat/completions` does: for bench.web_tier, the
floor under any gateway written on FastAPI, on this machine.

One route; a body model of the fields the benchmark sends; the body sent on over one aiohttp
session (the transport genai-service uses); the upstream's reply passed on as its bytes come,
without reading them: one body, or with `"stream": true` each piece of the stream as it is
received. No authentication, guards, accounting, own ids, middleware or access log.
`UPSTREAM` is the upstream's base URL.
Run: `UPSTREAM=http://127.0.0.1:8100 python -m uvicorn bench.passthrough_proxy:app`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse

from bench.plain_proxy import ChatRequest, plain_app

UPSTREAM = f"{os.environ['UPSTREAM']}/v1/chat/completions"
JSON = {"Content-Type": "application/json"}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Idle connections kept 4 s: uvicorn, serving the upstream, closes them after 5.
    connector = aiohttp.TCPConnector(limit=1000, keepalive_timeout=4.0)
    async with aiohttp.ClientSession(connector=connector) as session:
        app.state.session = session
        yield


app = plain_app(lifespan=lifespan)


@app.post("/v1/chat/completions")
async def chat(body: ChatRequest, request: Request) -> Response:
    session: aiohttp.ClientSession = request.app.state.session
    reply = await session.post(UPSTREAM, data=body.model_dump_json(exclude_none=True), headers=JSON)
    if not body.stream:
        async with reply:
            return Response(await reply.read(), media_type="application/json")
    return StreamingResponse(_pieces(reply), media_type="text/event-stream")


async def _pieces(reply: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    async with reply:
        async for piece in reply.content.iter_any():
            yield piece
