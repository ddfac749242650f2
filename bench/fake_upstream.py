"""A fast fake OpenAI-compatible upstream, for benchmarks of what genai-service itself costs.

`POST /v1/chat/completions` answers at once with the same reply: a JSON completion with its
usage, or with `"stream": true` an SSE stream of 16 content chunks, the finish and the usage;
`POST /v1/embeddings` answers one small vector per input. A bare ASGI callable whose answers
are encoded once at import, so what a benchmark measures through it is genai-service, not this
server.

Run: `python -m uvicorn bench.fake_upstream:app --port 8100`.
"""

from __future__ import annotations

import json
from typing import Any

MODEL = "fake-upstream"
REPLY_PIECES = tuple(f" word{index}" for index in range(16))
PROMPT_TOKENS = 12
USAGE = {
    "prompt_tokens": PROMPT_TOKENS,
    "completion_tokens": len(REPLY_PIECES),
    "total_tokens": PROMPT_TOKENS + len(REPLY_PIECES),
}
EMBEDDING = [0.5, -0.25, 0.125, 0.0625]


def _encoded(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + _encoded(payload) + b"\n\n"


def _chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": MODEL,
        "choices": choices,
        **extra,
    }


STREAM = b"".join(
    [
        _event(_chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}}])),
        *(
            _event(_chunk([{"index": 0, "delta": {"content": piece}, "finish_reason": None}]))
            for piece in REPLY_PIECES
        ),
        _event(_chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}])),
        _event(_chunk([], usage=USAGE)),
        b"data: [DONE]\n\n",
    ]
)
COMPLETION = _encoded(
    {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(REPLY_PIECES)},
                "finish_reason": "stop",
            }
        ],
        "usage": USAGE,
    }
)
SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


def _json_headers(body: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]


def _embeddings(request: dict[str, Any]) -> bytes:
    inputs = request.get("input")
    count = len(inputs) if isinstance(inputs, list) and not isinstance(inputs[0], int) else 1
    data = [{"object": "embedding", "index": i, "embedding": EMBEDDING} for i in range(count)]
    usage = {"prompt_tokens": 4 * count, "total_tokens": 4 * count}
    return _encoded({"object": "list", "data": data, "model": MODEL, "usage": usage})


async def _answer(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


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
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path = scope["path"]
    if scope["method"] == "POST" and path == "/v1/chat/completions":
        if json.loads(body).get("stream"):
            await _answer(send, 200, SSE_HEADERS, STREAM)
        else:
            await _answer(send, 200, _json_headers(COMPLETION), COMPLETION)
    elif scope["method"] == "POST" and path == "/v1/embeddings":
        answer = _embeddings(json.loads(body))
        await _answer(send, 200, _json_headers(answer), answer)
    else:
        await _answer(send, 200 if path == "/healthz" else 404, _json_headers(b""), b"")
