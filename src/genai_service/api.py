"""Every domain router, assembled in one place."""

from __future__ import annotations

from fastapi import APIRouter

from genai_service.api_keys.router import router as api_keys_router
from genai_service.auth.router import router as auth_router
from genai_service.chat.router import router as chat_router
from genai_service.conversations.router import router as conversations_router
from genai_service.documents.router import router as documents_router
from genai_service.generations.router import router as generations_router
from genai_service.guards.router import limits_router, usage_router
from genai_service.health.router import router as health_router
from genai_service.openai_api.responses.router import router as responses_router
from genai_service.openai_api.router import router as openai_router
from genai_service.retrieval.router import router as search_router
from genai_service.users.router import registration_router
from genai_service.users.router import router as users_router
from genai_service.web_ui.router import router as web_ui_router

ROUTERS: tuple[APIRouter, ...] = (
    # The model routes first: each request is matched against the routers in turn, and these
    # carry the most traffic.
    openai_router,
    responses_router,
    health_router,
    chat_router,
    registration_router,
    auth_router,
    users_router,
    api_keys_router,
    limits_router,
    usage_router,
    conversations_router,
    generations_router,
    documents_router,
    search_router,
    web_ui_router,
)
"""Every domain router, in the order requests are matched against them. They are included in the
app one by one rather than through a router of routers: FastAPI walks each level of nesting on
every request."""
