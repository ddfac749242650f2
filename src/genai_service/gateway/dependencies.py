"""The caller of a request, as the gateway counts it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from genai_service.auth.dependencies import CurrentPrincipal, ModelPrincipal
from genai_service.gateway.caller import Caller


async def get_caller(principal: CurrentPrincipal) -> Caller:
    return Caller.of(principal)


async def get_model_route_caller(principal: ModelPrincipal) -> Caller:
    """For routes that run a model: checked outside the request's session (`ModelPrincipal`)."""
    return Caller.of(principal)


async def get_call_headers() -> dict[str, str]:
    """Response headers the guards give when a request's model calls are admitted (rate
    limits): one mapping per request, shared by the service that calls and the route that
    answers."""
    return {}


CallerDep = Annotated[Caller, Depends(get_caller)]
CallHeaders = Annotated[dict[str, str], Depends(get_call_headers)]
ModelRouteCaller = Annotated[Caller, Depends(get_model_route_caller)]
