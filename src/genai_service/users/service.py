from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from loguru import logger
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from genai_service.auth.passwords import hash_password, verify_password
from genai_service.auth.principal import Principal
from genai_service.auth.repository import RefreshTokenRepository
from genai_service.auth.throttle import LoginThrottle
from genai_service.auth.user_repository import UserRepository
from genai_service.kit.db import utcnow
from genai_service.kit.errors import Conflict, Forbidden, NotFound
from genai_service.kit.pagination import PageParams
from genai_service.models.user import Role, User
from genai_service.users.schemas import UserAdminUpdate, UserCreate, UserUpdateMe

if TYPE_CHECKING:
    from genai_service.auth.caller_cache import CallerCache
    from genai_service.guards.limits_cache import CachedLimits


class EmailTaken(Conflict):
    slug = "email-taken"


class UserService:
    def __init__(
        self,
        session: AsyncSession,
        *,
        throttle: LoginThrottle | None = None,
        registration_open: bool = True,
        callers: CallerCache | None = None,
        limits: CachedLimits | None = None,
    ) -> None:
        """`callers`: the serving process's cache of checked callers, told of changed users;
        `limits`: its cache of the limits in force, told of changed roles (whose defaults
        apply), in every process sharing Redis."""
        self.session = session
        self.users = UserRepository(session)
        self.refresh_tokens = RefreshTokenRepository(session)
        self.throttle = throttle
        self.registration_open = registration_open
        self.callers = callers
        self.limits = limits

    async def register(self, data: UserCreate) -> User:
        """Self-service sign-up (when registration is open): always an ordinary user."""
        if not self.registration_open:
            raise Forbidden("Registration is closed; ask an admin for an account.")
        return await self.create(data)

    async def create(self, data: UserCreate, *, role: Role = Role.USER) -> User:
        """Create an account with any role (the CLI's `users create`)."""
        if await self.users.get_by_email(data.email) is not None:
            raise EmailTaken("An account with this email already exists.")
        user = User(
            email=data.email,
            hashed_password=await hash_password(data.password),
            full_name=data.full_name,
            role=role,
        )
        try:
            await self.users.add(user)
        except IntegrityError:  # registered concurrently
            raise EmailTaken("An account with this email already exists.") from None
        logger.info("user {} registered (role {})", user.id, role.value)
        return user

    async def get_by_email(self, email: str) -> User:
        user = await self.users.get_by_email(email.strip().lower())
        if user is None:
            raise NotFound("No user with this email.")
        return user

    async def update_me(self, principal: Principal, data: UserUpdateMe) -> User:
        """Change the caller's own profile. A new password needs the current one and ends the
        caller's other sessions (their refresh-token families); the current one stays."""
        user = principal.user
        if principal.is_anonymous:
            raise Forbidden("The anonymous user cannot be changed; register an account.")
        if "full_name" in data.model_fields_set:
            user.full_name = data.full_name
        if data.password is not None:
            await self._check_current_password(user, data.current_password or "")
            user.hashed_password = await hash_password(data.password)
            await self.refresh_tokens.revoke_families_of_user(
                user.id, utcnow(), keep=principal.session_id
            )
            self._forget_on_commit(user)
            logger.info("user {} changed their password; other sessions revoked", user.id)
        await self.users.flush()
        return user

    async def list_users(self, params: PageParams) -> tuple[Sequence[User], int]:
        return await self.users.list_page(offset=params.offset, limit=params.limit)

    async def administer(self, admin: User, user_id: uuid.UUID, data: UserAdminUpdate) -> User:
        """Change a user's role or active flag. Deactivation takes effect on the next request
        (every request reloads its user; the model routes' `CallerCache` forgets the user when
        this commits) and revokes the user's sessions."""
        user = await self.users.get(user_id)
        if user is None:
            raise NotFound("No such user.")
        if user.id == admin.id and (data.role is Role.USER or data.is_active is False):
            raise Conflict("You cannot demote or deactivate your own account.")
        if user.is_anonymous and data.role is Role.ADMIN:
            raise Conflict("The anonymous user cannot be an admin.")
        if data.role is not None:
            if data.role is not user.role and self.limits is not None:
                self.limits.forget_on_commit(self.session)
            user.role = data.role
        if data.is_active is not None:
            user.is_active = data.is_active
            if not data.is_active:
                await self.refresh_tokens.revoke_families_of_user(user.id, utcnow())
        self._forget_on_commit(user)
        await self.users.flush()
        logger.info(
            "admin {} updated user {}: {}", admin.id, user.id, data.model_dump(exclude_unset=True)
        )
        return user

    def _forget_on_commit(self, user: User) -> None:
        if self.callers is not None:
            self.callers.forget_user_on_commit(self.session, user.id)

    async def _check_current_password(self, user: User, current_password: str) -> None:
        if self.throttle is not None:
            await self.throttle.admit(user.email, None)
        matches, _ = await verify_password(current_password, user.hashed_password)
        if not matches:
            raise Forbidden("The current password is incorrect.")
        if self.throttle is not None:
            await self.throttle.succeeded(user.email, None)
