"""Sessions: login, refresh-token rotation with reuse detection, and logout."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NoReturn

from loguru import logger
from sqlalchemy.ext.asyncio import AsyncSession

from genai_service.auth.errors import InvalidCredentials, LoginFailed
from genai_service.auth.passwords import verify_password
from genai_service.auth.repository import RefreshTokenRepository
from genai_service.auth.schemas import TokenPair
from genai_service.auth.throttle import LoginThrottle
from genai_service.auth.tokens import AccessTokenCodec
from genai_service.auth.user_repository import UserRepository
from genai_service.kit.db import utcnow
from genai_service.kit.security import new_opaque_token, token_digest
from genai_service.models.refresh_token import RefreshToken
from genai_service.models.user import User

if TYPE_CHECKING:
    from genai_service.auth.caller_cache import CallerCache


def normalise_email(email: str) -> str:
    return email.strip().lower()


class AuthService:
    def __init__(
        self,
        session: AsyncSession,
        *,
        codec: AccessTokenCodec,
        refresh_ttl: timedelta,
        throttle: LoginThrottle,
        callers: CallerCache,
    ) -> None:
        self.session = session
        self.users = UserRepository(session)
        self.refresh_tokens = RefreshTokenRepository(session)
        self.codec = codec
        self.refresh_ttl = refresh_ttl
        self.throttle = throttle
        self.callers = callers

    async def login(self, email: str, password: str, *, client: str | None) -> TokenPair:
        """A new session for valid credentials. Unknown email and wrong password look alike:
        the same 401, after the same argon2 work. The throttle admits the attempt before the
        password is verified (see `auth.throttle`)."""
        account = normalise_email(email)
        await self.throttle.admit(account, client)
        user = await self.users.get_by_email(account)
        matches, new_hash = await verify_password(
            password, user.hashed_password if user is not None else None
        )
        if user is None or not matches:
            logger.info("login failed for an account (client {})", client)
            raise LoginFailed()
        if not user.is_active:
            raise LoginFailed("This account is disabled.")
        await self.throttle.succeeded(account, client)
        if new_hash is not None:
            user.hashed_password = new_hash
        logger.info("user {} logged in", user.id)
        return await self._issue(user, family_id=uuid.uuid4(), now=utcnow())

    async def refresh(self, presented: str) -> TokenPair:
        """Rotate: the presented token is spent and a new pair issued in the same family.

        A spent token presented again means a copy is in someone else's hands, so the whole
        family is revoked (both holders must log in again). The caller must keep this
        revocation even though the request fails: see `auth.dependencies.RefreshSessionDep`.
        """
        now = utcnow()
        token = await self.refresh_tokens.get_by_digest(token_digest(presented))
        if token is None or token.revoked_at is not None:
            raise InvalidCredentials()
        if token.used_at is not None:
            await self._revoke_reused(token, now)
        if token.expires_at <= now:
            raise InvalidCredentials()
        user = await self.users.get(token.user_id)
        if user is None or not user.is_active:
            raise InvalidCredentials()
        if not await self.refresh_tokens.mark_used(token.id, now):
            await self._revoke_reused(token, now)  # a concurrent request spent it first
        return await self._issue(user, family_id=token.family_id, now=now)

    async def logout(self, presented: str) -> None:
        """End the session the refresh token belongs to. Unknown tokens are ignored."""
        token = await self.refresh_tokens.get_by_digest(token_digest(presented))
        if token is not None:
            await self.refresh_tokens.revoke_family(token.family_id, utcnow())
            self.callers.forget_user_on_commit(self.session, token.user_id)
            logger.info("user {} logged out (session {})", token.user_id, token.family_id)

    async def _revoke_reused(self, token: RefreshToken, now: datetime) -> NoReturn:
        await self.refresh_tokens.revoke_family(token.family_id, now)
        self.callers.forget_user_on_commit(self.session, token.user_id)
        logger.warning(
            "refresh token reused: session {} of user {} revoked", token.family_id, token.user_id
        )
        raise InvalidCredentials()

    async def _issue(self, user: User, *, family_id: uuid.UUID, now: datetime) -> TokenPair:
        refresh_token = new_opaque_token()
        await self.refresh_tokens.add(
            RefreshToken(
                user_id=user.id,
                family_id=family_id,
                token_digest=token_digest(refresh_token),
                created_at=now,
                expires_at=now + self.refresh_ttl,
            )
        )
        return TokenPair(
            access_token=self.codec.encode(user_id=user.id, session_id=family_id, now=now),
            refresh_token=refresh_token,
            expires_in=int(self.codec.ttl.total_seconds()),
        )
