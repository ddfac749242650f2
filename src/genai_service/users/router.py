"""`/api/users`: the caller's own account, and user administration for admins; and
`/api/auth/register`, where accounts are created."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from genai_service.auth.dependencies import AdminUser, CurrentUser, SignedInPrincipal
from genai_service.kit.pagination import Page, PaginationDep
from genai_service.users.dependencies import UserServiceDep
from genai_service.users.schemas import UserAdminUpdate, UserCreate, UserRead, UserUpdateMe

router = APIRouter(prefix="/api/users", tags=["users"])
registration_router = APIRouter(prefix="/api/auth", tags=["auth"])


@registration_router.post("/register", status_code=status.HTTP_201_CREATED, responses={409: {}})
async def register(body: UserCreate, service: UserServiceDep) -> UserRead:
    """Create an account. Every broken password rule is listed in the 422."""
    return UserRead.model_validate(await service.register(body))


@router.get("/me")
async def read_me(user: CurrentUser) -> UserRead:
    """The caller's account (the anonymous user in anonymous mode)."""
    return UserRead.model_validate(user)


@router.patch("/me")
async def update_me(
    body: UserUpdateMe, principal: SignedInPrincipal, service: UserServiceDep
) -> UserRead:
    """Change your name or password. A new password needs `current_password` and ends your
    other sessions."""
    return UserRead.model_validate(await service.update_me(principal, body))


@router.get("")
async def list_users(
    _admin: AdminUser, page: PaginationDep, service: UserServiceDep
) -> Page[UserRead]:
    users, total = await service.list_users(page)
    return Page.of([UserRead.model_validate(user) for user in users], total=total, params=page)


@router.patch("/{user_id}")
async def administer_user(
    user_id: uuid.UUID, body: UserAdminUpdate, admin: AdminUser, service: UserServiceDep
) -> UserRead:
    """Change a user's role or deactivate them (their tokens and keys stop working at once)."""
    return UserRead.model_validate(await service.administer(admin, user_id, body))
