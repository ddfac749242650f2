"""Who is calling: a bearer credential (access token or API key) checked on every request."""

from __future__ import annotations

import uuid

from loguru import logger
from sqlalchemy.ext.asyncio import AsyncSession

from genai_service.api_keys.service import ApiKeyService, is_api_key
from genai_service.auth.errors import InvalidCredentials
from genai_service.auth.principal import Principal
from genai_service.auth.repository import RefreshTokenRepository
from genai_service.auth.tokens import AccessTokenCodec, InvalidAccessToken
from genai_service.auth.user_repository import UserRepository
from genai_service.kit.db import utcnow
from genai_service.models.user import ANONYMOUS_USER_ID, User


class CredentialVerifier:
    def __init__(self, session: AsyncSession, codec: AccessTokenCodec) -> None:
        self.users = UserRepository(session)
        self.sessions = RefreshTokenRepository(session)
        self.api_keys = ApiKeyService(session)
        self.codec = codec

    async def verify(self, credential: str) -> Principal:
        """The caller a credential stands for. Every failure is the same 401."""
        if is_api_key(credential):
            return await self._verify_api_key(credential)
        return await self._verify_access_token(credential)

    async def anonymous(self) -> Principal:
        user = await self.users.get(ANONYMOUS_USER_ID)
        if user is None or not user.is_active:
            raise InvalidCredentials("Anonymous access is disabled; sign in.")
        return Principal(user=user)

    async def _verify_access_token(self, token: str) -> Principal:
        try:
            claims = self.codec.decode(token)
        except InvalidAccessToken as error:
            logger.debug("access token refused: {}", error)
            raise InvalidCredentials() from None
        user = await self._active_user(claims.user_id)
        if not await self.sessions.family_is_active(claims.session_id, user.id):
            raise InvalidCredentials()
        return Principal(user=user, session_id=claims.session_id, expires_at=claims.expires_at)

    async def _verify_api_key(self, secret: str) -> Principal:
        key = await self.api_keys.authenticate(secret, utcnow())
        if key is None:
            raise InvalidCredentials()
        return Principal(user=key.user, api_key_id=key.id, expires_at=key.expires_at)

    async def _active_user(self, user_id: uuid.UUID) -> User:
        user = await self.users.get(user_id)
        if user is None or not user.is_active:
            raise InvalidCredentials()
        return user
