from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from genai_service.inference.registry import ModelRegistry


async def get_models(request: Request) -> ModelRegistry:
    models: ModelRegistry = request.app.state.models
    return models


ModelsDep = Annotated[ModelRegistry, Depends(get_models)]
