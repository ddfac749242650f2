"""Setting limits: a user's own (admins), an API key's own (its owner or an admin).

An actor of `None` is the operator at the command line, who may do what an admin may.

A key's limits can only be tighter than its owner's: a key limit above the owner's limit in
force is refused, naming the field. Lowering an owner's limits later needs no check, since a
key is held to both.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from loguru import logger
from sqlalchemy.ext.asyncio import AsyncSession

from genai_service.api_keys.repository import ApiKeyRepository
from genai_service.auth.user_repository import UserRepository
from genai_service.guards.errors import KeyLimitAboveOwner
from genai_service.guards.limits import LIMIT_FIELDS, LimitsInForce, limits_of, role_defaults
from genai_service.guards.repository import LimitsRepository
from genai_service.guards.schemas import KeyLimitsRead, UserLimitsRead
from genai_service.kit.errors import NotFound
from genai_service.models.api_key import ApiKey
from genai_service.models.user import User
from genai_service.settings import Limits, LimitsSettings

if TYPE_CHECKING:
    from genai_service.guards.limits_cache import CachedLimits


class LimitsService:
    def __init__(
        self,
        session: AsyncSession,
        settings: LimitsSettings,
        *,
        cache: CachedLimits | None = None,
    ) -> None:
        """`cache`: the limits in force as the guards read them, forgotten (in every process
        sharing Redis) once a change of limits is committed."""
        self.settings = settings
        self._session = session
        self._cache = cache
        self.limits = LimitsRepository(session)
        self.users = UserRepository(session)
        self.keys = ApiKeyRepository(session)

    # Users (admins only: the router's guard)

    async def of_user(self, user_id: uuid.UUID) -> UserLimitsRead:
        user = await self._user(user_id)
        own = await self.limits.of_user(user.id)
        defaults = role_defaults(self.settings, user.role)
        return UserLimitsRead(
            user_id=user.id,
            own=limits_of(own) if own is not None else None,
            role_defaults=defaults,
            in_force=limits_of(own) if own is not None else defaults,
        )

    async def set_for_user(
        self, admin: User | None, user_id: uuid.UUID, limits: Limits
    ) -> UserLimitsRead:
        user = await self._user(user_id)
        await self.limits.put(limits.model_dump(), user_id=user.id)
        self._changed()
        logger.info("{} set the limits of user {}: {}", _who(admin), user.id, limits)
        return await self.of_user(user.id)

    async def clear_for_user(self, admin: User | None, user_id: uuid.UUID) -> None:
        user = await self._user(user_id)
        own = await self.limits.of_user(user.id)
        if own is not None:
            await self.limits.delete(own)
            self._changed()
            logger.info("{} cleared the limits of user {}", _who(admin), user.id)

    def _changed(self) -> None:
        if self._cache is not None:
            self._cache.forget_on_commit(self._session)

    async def _user(self, user_id: uuid.UUID) -> User:
        user = await self.users.get(user_id)
        if user is None:
            raise NotFound("No such user.")
        return user

    # Keys (their owner, or an admin)

    async def of_key(self, actor: User | None, key_id: uuid.UUID) -> KeyLimitsRead:
        key = await self._key(actor, key_id)
        own = await self.limits.of_key(key.id)
        owner = await self._owner_limits(key)
        in_force = LimitsInForce(user=owner, key=limits_of(own) if own is not None else None)
        return KeyLimitsRead(
            api_key_id=key.id,
            own=in_force.key,
            owner=owner,
            in_force=Limits.model_validate(
                {name: in_force.tightest(name) for name in LIMIT_FIELDS}
            ),
        )

    async def set_for_key(
        self, actor: User | None, key_id: uuid.UUID, limits: Limits
    ) -> KeyLimitsRead:
        key = await self._key(actor, key_id)
        owner = await self._owner_limits(key)
        for name in LIMIT_FIELDS:
            wanted, allowed = getattr(limits, name), getattr(owner, name)
            if wanted is not None and allowed is not None and wanted > allowed:
                raise KeyLimitAboveOwner(
                    f"{name} of {wanted} is above the key owner's {name} of {allowed}: a key's "
                    "limits can only be tighter than its owner's.",
                    param=name,
                    extra={"field": name, "owner_limit": allowed},
                )
        await self.limits.put(limits.model_dump(), api_key_id=key.id)
        self._changed()
        logger.info("{} set the limits of api key {}: {}", _who(actor), key.id, limits)
        return await self.of_key(actor, key.id)

    async def clear_for_key(self, actor: User | None, key_id: uuid.UUID) -> None:
        key = await self._key(actor, key_id)
        own = await self.limits.of_key(key.id)
        if own is not None:
            await self.limits.delete(own)
            self._changed()
            logger.info("{} cleared the limits of api key {}", _who(actor), key.id)

    async def _key(self, actor: User | None, key_id: uuid.UUID) -> ApiKey:
        """The key, when `actor` owns it or is an admin; another user's answers 404."""
        if actor is None or actor.is_admin:
            key = await self.keys.get_unrevoked(key_id)
        else:
            key = await self.keys.get_for_owner(key_id, actor.id)
        if key is None:
            raise NotFound("No such API key.")
        return key

    async def _owner_limits(self, key: ApiKey) -> Limits:
        owner = await self._user(key.user_id)
        own = await self.limits.of_user(owner.id)
        return limits_of(own) if own is not None else role_defaults(self.settings, owner.role)


def _who(actor: User | None) -> str:
    if actor is None:
        return "the command line"
    return f"{'admin' if actor.is_admin else 'user'} {actor.id}"
