"""genai-service for `bench.guards`, served as `genai-service serve` serves it (settings from the
environment), with its guards or without any: the only difference between the two.

Run: `python -m bench.guards_server PORT on|off`.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI

from genai_service.app import create_app
from genai_service.gateway.gateway import ModelGateway
from genai_service.runtime import runtime_of
from genai_service.serving import server_options


def with_guards() -> FastAPI:
    return create_app()


def without_guards() -> FastAPI:
    """The same app, its model gateway swapped once the runtime is open for one that has no
    guards (and the same metrics)."""
    app = create_app()
    opened = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(served: FastAPI) -> AsyncIterator[None]:
        async with opened(served):
            runtime = runtime_of(served)
            metrics = runtime.gateway.guarding.metrics
            runtime.gateway = ModelGateway(runtime.models, metrics=metrics)
            yield

    app.router.lifespan_context = lifespan
    return app


def main() -> None:
    port, guards = int(sys.argv[1]), sys.argv[2]
    factory = "with_guards" if guards == "on" else "without_guards"
    uvicorn.run(
        f"bench.guards_server:{factory}",
        factory=True,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        **server_options(),
    )


if __name__ == "__main__":
    main()
