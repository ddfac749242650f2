"""Limits of users (`/api/users/{id}/limits`, admins) and of API keys (`/api/keys/{id}/limits`,
their owner or an admin), and usage: the caller's own (`/api/usage/me`) and reports (admins)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, status

from genai_service.auth.dependencies import AdminUser, SignedInUser
from genai_service.gateway.dependencies import CallerDep
from genai_service.guards.dependencies import LimitsServiceDep, UsageServiceDep
from genai_service.guards.periods import Periods
from genai_service.guards.schemas import (
    KeyLimitsRead,
    LimitsUpdate,
    UsageMeRead,
    UsageRowRead,
    UserLimitsRead,
)
from genai_service.guards.usage_repository import Grouping, UsageFilter
from genai_service.kit.db import utcnow
from genai_service.kit.pagination import Page, PaginationDep
from genai_service.settings import Limits

limits_router = APIRouter(tags=["limits"])
usage_router = APIRouter(prefix="/api/usage", tags=["usage"])

USER_LIMITS = "/api/users/{user_id}/limits"
KEY_LIMITS = "/api/keys/{key_id}/limits"


def _limits(body: LimitsUpdate) -> Limits:
    return Limits.model_validate(body.model_dump())


@limits_router.get(USER_LIMITS, responses={404: {}})
async def read_user_limits(
    user_id: uuid.UUID, _admin: AdminUser, service: LimitsServiceDep
) -> UserLimitsRead:
    """The user's own limits (if any), its role's defaults, and the limits in force."""
    return await service.of_user(user_id)


@limits_router.put(USER_LIMITS, responses={404: {}})
async def set_user_limits(
    user_id: uuid.UUID, body: LimitsUpdate, admin: AdminUser, service: LimitsServiceDep
) -> UserLimitsRead:
    """Give the user limits of its own, in place of its role's defaults (`null`: no limit). They
    hold from the user's next model call on, in every server process."""
    return await service.set_for_user(admin, user_id, _limits(body))


@limits_router.delete(USER_LIMITS, status_code=status.HTTP_204_NO_CONTENT, responses={404: {}})
async def clear_user_limits(
    user_id: uuid.UUID, admin: AdminUser, service: LimitsServiceDep
) -> None:
    """Back to the defaults of the user's role."""
    await service.clear_for_user(admin, user_id)


@limits_router.get(KEY_LIMITS, responses={404: {}})
async def read_key_limits(
    key_id: uuid.UUID, user: SignedInUser, service: LimitsServiceDep
) -> KeyLimitsRead:
    """The key's own limits (if any), its owner's in force, and what holds for the key."""
    return await service.of_key(user, key_id)


@limits_router.put(KEY_LIMITS, responses={400: {}, 404: {}})
async def set_key_limits(
    key_id: uuid.UUID, body: LimitsUpdate, user: SignedInUser, service: LimitsServiceDep
) -> KeyLimitsRead:
    """Give the key limits of its own (`null`: none), held together with its owner's. A limit
    above the owner's limit in force is a `400` naming the field."""
    return await service.set_for_key(user, key_id, _limits(body))


@limits_router.delete(KEY_LIMITS, status_code=status.HTTP_204_NO_CONTENT, responses={404: {}})
async def clear_key_limits(
    key_id: uuid.UUID, user: SignedInUser, service: LimitsServiceDep
) -> None:
    """The key keeps only its owner's limits."""
    await service.clear_for_key(user, key_id)


@usage_router.get("/me")
async def read_my_usage(caller: CallerDep, service: UsageServiceDep) -> UsageMeRead:
    """Your tokens in the current UTC day and month: used, reserved by calls in flight, your
    limit and what remains; your calls per model; and the budgets of the API key you called
    with."""
    return await service.me(caller)


@usage_router.get("", responses={400: {}})
async def read_usage(
    _admin: AdminUser,
    service: UsageServiceDep,
    page: PaginationDep,
    user: Annotated[uuid.UUID | None, Query(description="Only this user's calls.")] = None,
    key: Annotated[uuid.UUID | None, Query(description="Only this API key's calls.")] = None,
    model: Annotated[str | None, Query(max_length=200, description="Only this model.")] = None,
    since: Annotated[
        date | None, Query(alias="from", description="First UTC day; default: this month's first.")
    ] = None,
    until: Annotated[
        date | None, Query(alias="to", description="Last UTC day (included); default: today.")
    ] = None,
    group_by: Annotated[
        list[Grouping] | None,
        Query(
            description="Sum per `day`, `model`, `user`, `key`; repeat to combine; none: one row."
        ),
    ] = None,
) -> Page[UsageRowRead]:
    """Calls and tokens summed per group, groups in order."""
    today = Periods.at(utcnow())
    where = UsageFilter(
        since=since or today.month,
        until=until or today.day,
        user_id=user,
        api_key_id=key,
        model=model,
    )
    rows, total = await service.report(where, group_by or [], page)
    return Page.of(rows, total=total, params=page)
