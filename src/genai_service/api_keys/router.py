"""`/api/keys`: the caller's API keys. Signed-in users only: the anonymous user has none."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status

from genai_service.api_keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from genai_service.api_keys.service import ApiKeyService
from genai_service.auth.dependencies import CallerCacheDep, SignedInUser
from genai_service.kit.pagination import Page, PaginationDep
from genai_service.runtime import SessionDep

router = APIRouter(prefix="/api/keys", tags=["api keys"])


def get_api_key_service(session: SessionDep, callers: CallerCacheDep) -> ApiKeyService:
    return ApiKeyService(session, callers=callers)


ApiKeyServiceDep = Annotated[ApiKeyService, Depends(get_api_key_service)]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_key(
    body: ApiKeyCreate, user: SignedInUser, service: ApiKeyServiceDep
) -> ApiKeyCreated:
    """Create a key. Its `secret` is in this response only; it cannot be shown again."""
    key, secret = await service.create(user, body)
    return ApiKeyCreated(**ApiKeyRead.model_validate(key).model_dump(), secret=secret)


@router.get("")
async def list_keys(
    user: SignedInUser, page: PaginationDep, service: ApiKeyServiceDep
) -> Page[ApiKeyRead]:
    keys, total = await service.list_for(user, page)
    return Page.of([ApiKeyRead.model_validate(key) for key in keys], total=total, params=page)


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses={404: {}})
async def revoke_key(key_id: uuid.UUID, user: SignedInUser, service: ApiKeyServiceDep) -> None:
    """Revoke a key: it stops working at once."""
    await service.revoke(user, key_id)
