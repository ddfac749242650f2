"""What the plain FastAPI proxies of bench.web_tier share: the chat body they accept (the fields
the benchmark sends) and an app that answers `/healthz`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel


class Message(BaseModel):
    role: str
    content: str


class ChatRequest(BaseModel):
    model: str
    messages: list[Message]
    max_tokens: int | None = None
    stream: bool = False


def plain_app(**options: Any) -> FastAPI:
    """A FastAPI app (`options` as FastAPI takes them) with `GET /healthz`."""
    app = FastAPI(**options)

    @app.get("/healthz")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
