from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from genai_service.auth.dependencies import get_model_caller
from genai_service.chat.service import ChatService
from genai_service.inference.dependencies import ModelsDep

# Any caller, the anonymous user included when anonymous mode is on; checked before the model
# runs, in a session that is closed by then.
router = APIRouter(tags=["chat"], dependencies=[Depends(get_model_caller)])


class Statement(BaseModel):
    statement: str


async def get_chat_service(models: ModelsDep) -> ChatService:
    return ChatService(models)


@router.get("/chat")
async def chat(
    service: Annotated[ChatService, Depends(get_chat_service)],
    prompt: Annotated[str, Query(min_length=1, max_length=4000)] = "Inspire me",
) -> Statement:
    """Ask the default chat model one question and get its answer."""
    return Statement(statement=await service.answer(prompt))
