from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from genai_service.auth.dependencies import CallerCacheDep, LoginThrottleDep
from genai_service.runtime import RuntimeDep, SessionDep, SettingsDep
from genai_service.users.service import UserService


async def get_user_service(
    session: SessionDep,
    settings: SettingsDep,
    throttle: LoginThrottleDep,
    callers: CallerCacheDep,
    runtime: RuntimeDep,
) -> UserService:
    return UserService(
        session,
        throttle=throttle,
        registration_open=settings.auth.registration_enabled,
        callers=callers,
        limits=runtime.limits,
    )


UserServiceDep = Annotated[UserService, Depends(get_user_service)]
