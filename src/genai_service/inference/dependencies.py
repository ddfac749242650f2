from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from genai_service.gateway.gateway import ModelGateway
from genai_service.inference.registry import ModelRegistry
from genai_service.runtime import RuntimeDep


async def get_models(runtime: RuntimeDep) -> ModelRegistry:
    return runtime.models


async def get_gateway(runtime: RuntimeDep) -> ModelGateway:
    return runtime.gateway


ModelsDep = Annotated[ModelRegistry, Depends(get_models)]
GatewayDep = Annotated[ModelGateway, Depends(get_gateway)]
