"""The limits in force for a caller: its user's own (or its role's defaults) and, when it came
with an API key that has limits of its own, the key's as well. Both hold: a key can only be
tighter than its owner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from loguru import logger
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from genai_service.gateway.caller import Caller
from genai_service.guards.errors import LimitsUnavailable
from genai_service.guards.repository import LimitsRepository
from genai_service.models.limits import CallerLimits
from genai_service.models.user import Role
from genai_service.settings import Limits, LimitsSettings

LIMIT_FIELDS = tuple(Limits.model_fields)
"""`tokens_per_day`, `tokens_per_month`, `requests_per_minute`, `tokens_per_minute`,
`max_concurrent`: the columns of a limits row, named as the settings name them."""


@dataclass(frozen=True, slots=True)
class LimitsInForce:
    user: Limits
    key: Limits | None
    """`None`: no key, or a key without limits of its own."""

    def tightest(self, name: str) -> int | None:
        """The limit `name` the caller is held to: the lower of its user's and its key's."""
        values = [
            value
            for limits in (self.user, self.key)
            if limits is not None and (value := getattr(limits, name)) is not None
        ]
        return min(values) if values else None

    @property
    def unlimited(self) -> bool:
        return all(
            getattr(limits, name) is None
            for limits in (self.user, self.key)
            if limits is not None
            for name in LIMIT_FIELDS
        )


class LimitsSource(Protocol):
    async def limits_for(self, caller: Caller) -> LimitsInForce: ...


def limits_of(row: CallerLimits) -> Limits:
    return Limits.model_validate({name: getattr(row, name) for name in LIMIT_FIELDS})


def role_defaults(settings: LimitsSettings, role: Role) -> Limits:
    return settings.admin if role is Role.ADMIN else settings.user


class StoredLimits:
    """Limits read from the database at every call: a change holds from the next call on, in
    every process."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], settings: LimitsSettings
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings

    async def limits_for(self, caller: Caller) -> LimitsInForce:
        try:
            async with self.sessionmaker() as session:
                return await limits_in_force(session, self.settings, caller)
        except (SQLAlchemyError, OSError) as error:
            logger.warning("limits of user {} not read: {}", caller.user_id, error)
            raise LimitsUnavailable(
                "The limits could not be checked just now; send the request again.",
                retry_after=1,
            ) from error


async def limits_in_force(
    session: AsyncSession, settings: LimitsSettings, caller: Caller
) -> LimitsInForce:
    found = await LimitsRepository(session).of_caller(caller.user_id, caller.api_key_id)
    if found is None:  # the user was deleted meanwhile: nothing of it may run
        return LimitsInForce(user=Limits(requests_per_minute=0), key=None)
    role, own, key = found
    user = limits_of(own) if own is not None else role_defaults(settings, role)
    return LimitsInForce(user=user, key=limits_of(key) if key is not None else None)
