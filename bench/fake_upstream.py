"""A fast fake OpenAI-compatible upstream: every `POST /v1/chat/completions` gets the same short
streamed reply (with its usage), at once. A bare ASGI callable, so what a benchmark measures
through it is genai-service, not this server.

Run: `python -m uvicorn bench.fake_upstream:app --port 8100`.
"""

from __future__ import annotations

import json
from typing import Any

REPLY_WORDS = ("Hello", " from", " the", " fake", " upstream.")
PROMPT_TOKENS = 12


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def _chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "fake-upstream",
        "choices": choices,
        **extra,
    }


STREAM = b"".join(
    [
        _event(_chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}}])),
        *(
            _event(_chunk([{"index": 0, "delta": {"content": word}, "finish_reason": None}]))
            for word in REPLY_WORDS
        ),
        _event(_chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}])),
        _event(
            _chunk(
                [],
                usage={
                    "prompt_tokens": PROMPT_TOKENS,
                    "completion_tokens": len(REPLY_WORDS),
                    "total_tokens": PROMPT_TOKENS + len(REPLY_WORDS),
                },
            )
        ),
        b"data: [DONE]\n\n",
    ]
)
HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    if scope["method"] == "POST" and scope["path"] == "/v1/chat/completions":
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": STREAM})
        return
    status = 200 if scope["path"] == "/healthz" else 404
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b""})
