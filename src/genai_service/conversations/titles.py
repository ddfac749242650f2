"""A short title for an untitled conversation, written by the model after an exchange."""

from __future__ import annotations

import re
import uuid

from loguru import logger
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from genai_service.conversations.repository import ConversationRepository
from genai_service.inference.base import ChatMessage, ChatModel, ChatRequest, SamplingParams
from genai_service.kit.errors import AppError

TITLE_INSTRUCTION = (
    "Write a title of at most six words for the conversation below. Answer with the title only."
)
MAX_TITLE_WORDS = 8
MAX_TITLE_CHARACTERS = 80
EXCERPT_CHARACTERS = 1000
_LABEL = re.compile(r"^\s*title\s*:\s*", re.IGNORECASE)


def clean_title(text: str) -> str:
    """The first line of a model's answer, without quotes, a `Title:` label or a final period."""
    line = next((line for line in text.splitlines() if line.strip()), "")
    line = _LABEL.sub("", line).strip().strip("\"'*#`").strip()
    words = line.split()[:MAX_TITLE_WORDS]
    return " ".join(words)[:MAX_TITLE_CHARACTERS].rstrip(" .:;,-")


def fallback_title(question: str) -> str:
    return clean_title(" ".join(question.split()[:6])) or "New conversation"


class TitleWriter:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], max_tokens: int) -> None:
        self.sessionmaker = sessionmaker
        self.max_tokens = max_tokens

    async def write(
        self, model: ChatModel, conversation_id: uuid.UUID, question: str, answer: str
    ) -> None:
        """Title the conversation if it still has none. Failures are logged, never raised:
        a title is a convenience, and the exchange it names is already stored."""
        try:
            title = await self._generate(model, question, answer)
        except AppError as error:
            logger.warning("no title for conversation {}: {}", conversation_id, error.detail)
            title = fallback_title(question)
        async with self.sessionmaker.begin() as session:
            written = await ConversationRepository(session).set_title_if_untitled(
                conversation_id, title
            )
        if written:
            logger.debug("conversation {} titled", conversation_id)

    async def _generate(self, model: ChatModel, question: str, answer: str) -> str:
        excerpt = (
            f"User: {question[:EXCERPT_CHARACTERS]}\n\nAssistant: {answer[:EXCERPT_CHARACTERS]}"
        )
        request = ChatRequest(
            messages=[
                ChatMessage(role="system", content=TITLE_INSTRUCTION),
                ChatMessage(role="user", content=excerpt),
            ],
            sampling=SamplingParams(max_tokens=self.max_tokens, temperature=0.0, seed=0),
        )
        result = await model.complete(request)
        return clean_title(result.text) or fallback_title(question)
