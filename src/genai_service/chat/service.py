from __future__ import annotations

from genai_service.inference.base import ChatMessage, ChatRequest
from genai_service.inference.registry import ModelRegistry

SYSTEM_PROMPT = "You are a helpful assistant."


class ChatService:
    def __init__(self, models: ModelRegistry) -> None:
        self.models = models

    async def answer(self, prompt: str) -> str:
        """One question to the default chat model, with the design source's system prompt."""
        request = ChatRequest(
            messages=[
                ChatMessage(role="system", content=SYSTEM_PROMPT),
                ChatMessage(role="user", content=prompt),
            ]
        )
        result = await self.models.chat(None).complete(request)
        return result.text
