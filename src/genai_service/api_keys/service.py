from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from loguru import logger
from sqlalchemy.ext.asyncio import AsyncSession

from genai_service.api_keys.repository import ApiKeyRepository
from genai_service.api_keys.schemas import ApiKeyCreate
from genai_service.kit.db import utcnow
from genai_service.kit.errors import Forbidden, NotFound
from genai_service.kit.pagination import PageParams
from genai_service.kit.security import new_opaque_token, token_digest
from genai_service.models.api_key import ApiKey
from genai_service.models.user import User

if TYPE_CHECKING:
    from genai_service.auth.caller_cache import CallerCache

API_KEY_PREFIX = "gsk_"
SHOWN_PREFIX_LENGTH = len(API_KEY_PREFIX) + 8
LAST_USED_RESOLUTION = timedelta(minutes=1)
"""`last_used_at` is written at most this often per key, not on every request."""


def is_api_key(credential: str) -> bool:
    return credential.startswith(API_KEY_PREFIX)


class ApiKeyService:
    def __init__(self, session: AsyncSession, *, callers: CallerCache | None = None) -> None:
        """`callers`: the serving process's cache of checked callers, told of revoked keys."""
        self.session = session
        self.keys = ApiKeyRepository(session)
        self.callers = callers

    async def create(self, owner: User, data: ApiKeyCreate) -> tuple[ApiKey, str]:
        """A new key and its secret: the only moment the secret exists outside the client."""
        if owner.is_anonymous:
            raise Forbidden("The anonymous user cannot have API keys.")
        secret = new_opaque_token(API_KEY_PREFIX)
        key = await self.keys.add(
            ApiKey(
                user_id=owner.id,
                name=data.name,
                prefix=secret[:SHOWN_PREFIX_LENGTH],
                key_digest=token_digest(secret),
                expires_at=data.expires_at,
            )
        )
        logger.info("api key {} created for user {}", key.id, owner.id)
        return key, secret

    async def list_for(self, owner: User, params: PageParams) -> tuple[Sequence[ApiKey], int]:
        return await self.keys.list_for_owner(owner.id, offset=params.offset, limit=params.limit)

    async def revoke(self, owner: User, key_id: uuid.UUID) -> None:
        key = await self.keys.get_for_owner(key_id, owner.id)
        if key is None:
            raise NotFound("No such API key.")
        await self.keys.revoke(key, utcnow())
        if self.callers is not None:
            self.callers.forget_user_on_commit(self.session, owner.id)
        logger.info("api key {} revoked by user {}", key.id, owner.id)

    async def authenticate(self, secret: str, now: datetime) -> ApiKey | None:
        """The unrevoked, unexpired key with this secret of an active user (loaded), or `None`."""
        key = await self.keys.get_unrevoked_by_digest(token_digest(secret))
        if key is None or not key.user.is_active:
            return None
        if key.expires_at is not None and key.expires_at <= now:
            return None
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
            await self.keys.touch(key, now)
        return key
