"""`/api/auth`: log in (OAuth2 password flow), refresh, log out. All public (registering an
account is the users' router's, at `/api/auth/register`).

Logout needs no access token: the refresh token it ends is proof enough, and a client whose
access token has expired can still end its session.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from genai_service.auth.dependencies import AuthServiceDep, RefreshAuthServiceDep
from genai_service.auth.schemas import RefreshRequest, TokenPair

router = APIRouter(prefix="/api/auth", tags=["auth"])

UNAUTHORIZED: dict[int | str, dict[str, Any]] = {401: {"description": "Invalid credentials"}}


@router.post("/token", responses={**UNAUTHORIZED, 429: {"description": "Too many failures"}})
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    service: AuthServiceDep,
    request: Request,
) -> TokenPair:
    """Log in with `username` (the email) and `password` as an OAuth2 password form."""
    client = request.client.host if request.client else None
    return await service.login(form.username, form.password, client=client)


@router.post("/refresh", responses=UNAUTHORIZED)
async def refresh(body: RefreshRequest, service: RefreshAuthServiceDep) -> TokenPair:
    """Trade a refresh token for a new pair. Each refresh token works once; presenting a spent
    one ends the whole session."""
    return await service.refresh(body.refresh_token)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(body: RefreshRequest, service: AuthServiceDep) -> None:
    """End the session of this refresh token (idempotent: unknown tokens are ignored)."""
    await service.logout(body.refresh_token)
