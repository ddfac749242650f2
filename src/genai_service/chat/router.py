from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from genai_service.chat.service import ChatService
from genai_service.gateway.dependencies import ModelRouteCaller
from genai_service.inference.dependencies import GatewayDep

# Any caller, the anonymous user included when anonymous mode is on; checked before the model
# runs, in a session that is closed by then.
router = APIRouter(tags=["chat"])


class Statement(BaseModel):
    statement: str


async def get_chat_service(gateway: GatewayDep, caller: ModelRouteCaller) -> ChatService:
    return ChatService(gateway, caller)


@router.get("/chat")
async def chat(
    service: Annotated[ChatService, Depends(get_chat_service)],
    prompt: Annotated[str, Query(min_length=1, max_length=4000)] = "Inspire me",
) -> Statement:
    """Ask the default chat model one question and get its answer."""
    return Statement(statement=await service.answer(prompt))
