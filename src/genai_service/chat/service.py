from __future__ import annotations

from genai_service.gateway.caller import Caller
from genai_service.gateway.gateway import ModelGateway
from genai_service.inference.base import ChatMessage, ChatRequest

SYSTEM_PROMPT = "You are a helpful assistant."


class ChatService:
    def __init__(self, gateway: ModelGateway, caller: Caller) -> None:
        self.gateway = gateway
        self.caller = caller

    async def answer(self, prompt: str) -> str:
        """One question to the default chat model, with the design source's system prompt."""
        request = ChatRequest(
            messages=[
                ChatMessage(role="system", content=SYSTEM_PROMPT),
                ChatMessage(role="user", content=prompt),
            ]
        )
        result = await self.gateway.chat(self.caller, "chat").complete(request)
        return result.text
