"""Route guards as typed dependencies, and the services of the identity domains.

Guards, from the most to the least permissive:
- `CurrentUser`: any caller; without credentials, the anonymous user when anonymous mode is on.
- `SignedInUser` / `SignedInPrincipal`: a real account (the anonymous user gets 401).
- `AdminUser`: a signed-in admin (others get 403).
- `ModelCaller`: the `CurrentUser` guard for routes that run a model. It checks the credential
  in a short session of its own, so the request holds no database connection while the model
  works (a generation can take minutes; a pool of connections is small), and remembers it for
  a few seconds (`CallerCache`), so small requests such as embeddings rarely wait for it.
Credentials that are present but invalid are always 401, never a fallback to anonymous; only
the literal `Bearer anonymous` (see `ANONYMOUS_CREDENTIAL`) counts as sending none.

The guards are `async def` although most never await: FastAPI runs plain `def` dependencies
on its thread pool, a hop per dependency and request that the busiest routes cannot afford.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.openapi.models import OAuth2 as OAuth2Model
from fastapi.openapi.models import OAuthFlowPassword
from fastapi.openapi.models import OAuthFlows as OAuthFlowsModel
from fastapi.security.base import SecurityBase
from sqlalchemy.ext.asyncio import AsyncSession

from genai_service.auth.caller_cache import CallerCache
from genai_service.auth.credentials import CredentialVerifier
from genai_service.auth.errors import AuthenticationRequired, InvalidCredentials
from genai_service.auth.principal import Principal
from genai_service.auth.service import AuthService
from genai_service.auth.throttle import LoginThrottle
from genai_service.auth.tokens import AccessTokenCodec
from genai_service.kit.errors import AppError, Forbidden
from genai_service.models.user import User
from genai_service.runtime import Runtime, RuntimeDep, SessionDep, SettingsDep
from genai_service.settings import Settings

TOKEN_URL = "/api/auth/token"  # noqa: S105  # nosec B105  # a path, not a secret
ANONYMOUS_CREDENTIAL = "anonymous"
"""`Authorization: Bearer anonymous` asks for anonymous access explicitly, like sending nothing.
SDKs that insist on an API key (the `openai` client) use it: `api_key="anonymous"`."""

PASSWORD_FLOW = "OAuth2PasswordBearer"  # noqa: S105  # nosec B105  # a scheme's name
"""The docs' second way in beside `APIKey`: the Authorize button's password flow, whose token
is sent in the same `Authorization: Bearer ...` header (see `document_password_flow`)."""


class BearerCredential(SecurityBase):
    """The bearer credential of a request: `None` without an `Authorization` header, 401 for
    another scheme. As a security scheme, it is what the docs call `APIKey`.

    One dependency that both reads the header and names the scheme: FastAPI solves every
    dependency of every request, and the busiest routes cannot afford one per scheme."""

    def __init__(self) -> None:
        self.model = HTTPBearerModel(description="An API key (`gsk_...`) or an access token.")
        self.scheme_name = "APIKey"

    async def __call__(self, request: Request) -> str | None:
        header = request.headers.get("Authorization")
        if header is None:
            return None
        scheme, _, credential = header.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise InvalidCredentials(
                "Send credentials as `Authorization: Bearer <token or API key>`."
            )
        return credential


bearer_credential = BearerCredential()


def access_token_codec(settings: Settings) -> AccessTokenCodec:
    if settings.secret_key is None:
        raise RuntimeError("the secret key is not prepared (Settings.prepare_data_dir)")
    return AccessTokenCodec(
        settings.secret_key.get_secret_value(),
        timedelta(seconds=settings.auth.access_token_ttl_seconds),
    )


def document_password_flow(document: dict[str, Any]) -> None:
    """Offer the password flow (`TOKEN_URL`) in the docs wherever a bearer credential is taken."""
    security: dict[str, list[str]] = {bearer_credential.scheme_name: []}
    operations = (op for path in document.get("paths", {}).values() for op in path.values())
    for operation in operations:
        if security in operation.get("security", []):
            operation["security"].append({PASSWORD_FLOW: []})
    schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
    password = OAuthFlowsModel(password=OAuthFlowPassword(tokenUrl=TOKEN_URL))
    schemes[PASSWORD_FLOW] = OAuth2Model(flows=password).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )


Credential = Annotated[str | None, Security(bearer_credential)]


async def _verify(session: AsyncSession, settings: Settings, credential: str | None) -> Principal:
    verifier = CredentialVerifier(session, access_token_codec(settings))
    if credential is not None and credential != ANONYMOUS_CREDENTIAL:
        return await verifier.verify(credential)
    if settings.allows_anonymous:
        return await verifier.anonymous()
    raise AuthenticationRequired()


async def get_principal(
    session: SessionDep, settings: SettingsDep, credential: Credential
) -> Principal:
    return await _verify(session, settings, credential)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def get_current_user(principal: CurrentPrincipal) -> User:
    return principal.user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def verify_outside_request_session(runtime: Runtime, credential: str | None) -> Principal:
    """Who `credential` stands for, checked in a short session committed and closed at once.

    For requests that outlast their database work (a generation can take minutes) and for
    WebSockets: they hold no connection while they wait. Verifying can write (an API key's
    `last_used_at`), hence the commit; the user comes back detached, with its columns loaded.
    A credential checked a moment ago is not checked again (`CallerCache`): treat the user as
    read-only.
    """

    async def check() -> Principal:
        async with runtime.sessionmaker.begin() as session:
            return await _verify(session, runtime.settings, credential)

    return await runtime.caller_cache.principal_for(credential or ANONYMOUS_CREDENTIAL, check)


async def get_model_principal(runtime: RuntimeDep, credential: Credential) -> Principal:
    """Who calls a route that runs a model, checked outside the request's session."""
    return await verify_outside_request_session(runtime, credential)


ModelPrincipal = Annotated[Principal, Depends(get_model_principal)]


async def get_model_caller(principal: ModelPrincipal) -> User:
    return principal.user


ModelCaller = Annotated[User, Depends(get_model_caller)]


async def get_signed_in_principal(principal: CurrentPrincipal) -> Principal:
    if principal.is_anonymous:
        raise AuthenticationRequired(
            "Sign in to use this endpoint; anonymous access is not enough."
        )
    return principal


SignedInPrincipal = Annotated[Principal, Depends(get_signed_in_principal)]


async def get_signed_in_user(principal: SignedInPrincipal) -> User:
    return principal.user


SignedInUser = Annotated[User, Depends(get_signed_in_user)]


async def get_admin_user(user: SignedInUser) -> User:
    if not user.is_admin:
        raise Forbidden("This endpoint is for admins.")
    return user


AdminUser = Annotated[User, Depends(get_admin_user)]


async def get_login_throttle(runtime: RuntimeDep) -> LoginThrottle:
    return runtime.login_throttle


LoginThrottleDep = Annotated[LoginThrottle, Depends(get_login_throttle)]


async def get_caller_cache(runtime: RuntimeDep) -> CallerCache:
    return runtime.caller_cache


CallerCacheDep = Annotated[CallerCache, Depends(get_caller_cache)]


async def get_session_keeping_refusals(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """Like `kit.db.SessionDep`, but an `AppError` commits instead of rolling back.

    For token refresh only: detecting a reused refresh token revokes its family *and* answers
    401, and the revocation must outlive the refusal. Refresh writes nothing else before it
    refuses, so committing on an `AppError` keeps exactly that.
    """
    async with runtime.sessionmaker() as session:
        try:
            yield session
        except AppError:
            await session.commit()
            raise
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


RefreshSessionDep = Annotated[AsyncSession, Depends(get_session_keeping_refusals, scope="function")]


def _auth_service(
    session: AsyncSession, settings: Settings, throttle: LoginThrottle, callers: CallerCache
) -> AuthService:
    return AuthService(
        session,
        codec=access_token_codec(settings),
        refresh_ttl=timedelta(seconds=settings.auth.refresh_token_ttl_seconds),
        throttle=throttle,
        callers=callers,
    )


async def get_auth_service(
    session: SessionDep, settings: SettingsDep, throttle: LoginThrottleDep, callers: CallerCacheDep
) -> AuthService:
    return _auth_service(session, settings, throttle, callers)


async def get_refresh_auth_service(
    session: RefreshSessionDep,
    settings: SettingsDep,
    throttle: LoginThrottleDep,
    callers: CallerCacheDep,
) -> AuthService:
    return _auth_service(session, settings, throttle, callers)


AuthServiceDep = Annotated[AuthService, Depends(get_auth_service)]
RefreshAuthServiceDep = Annotated[AuthService, Depends(get_refresh_auth_service)]
