"""The limits and usage services of a request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from genai_service.guards.limits_service import LimitsService
from genai_service.guards.usage_service import UsageService
from genai_service.runtime import RuntimeDep, SessionDep, SettingsDep


async def get_limits_service(
    session: SessionDep, settings: SettingsDep, runtime: RuntimeDep
) -> LimitsService:
    return LimitsService(session, settings.limits, cache=runtime.limits)


async def get_usage_service(
    session: SessionDep, settings: SettingsDep, runtime: RuntimeDep
) -> UsageService:
    return UsageService(session, settings.limits, write_pending=runtime.budget.flush)


LimitsServiceDep = Annotated[LimitsService, Depends(get_limits_service)]
UsageServiceDep = Annotated[UsageService, Depends(get_usage_service)]
