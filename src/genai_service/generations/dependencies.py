from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from genai_service.generations.events import EventLog
from genai_service.generations.runner import GenerationRunner
from genai_service.generations.service import GenerationService
from genai_service.runtime import RuntimeDep, SessionDep


async def get_event_log(runtime: RuntimeDep) -> EventLog:
    return runtime.events


async def get_generation_runner(runtime: RuntimeDep) -> GenerationRunner:
    if runtime.generations is None:
        raise RuntimeError("this process runs no generations")
    return runtime.generations


EventLogDep = Annotated[EventLog, Depends(get_event_log)]
GenerationRunnerDep = Annotated[GenerationRunner, Depends(get_generation_runner)]


async def get_generation_service(
    session: SessionDep, runner: GenerationRunnerDep
) -> GenerationService:
    liveness = runner.settings.generation_liveness_seconds
    return GenerationService(session, runner.events, runner.replies, liveness_seconds=liveness)


GenerationServiceDep = Annotated[GenerationService, Depends(get_generation_service)]
