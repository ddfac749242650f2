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

api_router = APIRouter()
api_router.include_router(health_router)
api_router.include_router(chat_router)
api_router.include_router(openai_router)
api_router.include_router(responses_router)
api_router.include_router(registration_router)
api_router.include_router(auth_router)
api_router.include_router(users_router)
api_router.include_router(api_keys_router)
api_router.include_router(limits_router)
api_router.include_router(usage_router)
api_router.include_router(conversations_router)
api_router.include_router(generations_router)
api_router.include_router(documents_router)
api_router.include_router(search_router)
api_router.include_router(web_ui_router)
