from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from genai_service.generations.events import EventLog
from genai_service.generations.runner import GenerationRunner
from genai_service.generations.service import GenerationService
from genai_service.kit.db import SessionDep
from genai_service.settings import SettingsDep


def get_event_log(connection: HTTPConnection) -> EventLog:
    events: EventLog = connection.app.state.generation_events
    return events


def get_generation_runner(connection: HTTPConnection) -> GenerationRunner:
    runner: GenerationRunner = connection.app.state.generation_runner
    return runner


EventLogDep = Annotated[EventLog, Depends(get_event_log)]
GenerationRunnerDep = Annotated[GenerationRunner, Depends(get_generation_runner)]


async def get_generation_service(
    session: SessionDep, events: EventLogDep, settings: SettingsDep
) -> GenerationService:
    liveness = settings.conversations.generation_liveness_seconds
    return GenerationService(session, events, liveness_seconds=liveness)


GenerationServiceDep = Annotated[GenerationService, Depends(get_generation_service)]
