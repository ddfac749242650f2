from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from genai_service.generations.events import EventLog
from genai_service.generations.runner import GenerationRunner
from genai_service.generations.service import GenerationService
from genai_service.kit.db import SessionDep


def get_event_log(connection: HTTPConnection) -> EventLog:
    events: EventLog = connection.app.state.generation_events
    return events


def get_generation_runner(connection: HTTPConnection) -> GenerationRunner:
    runner: GenerationRunner = connection.app.state.generation_runner
    return runner


EventLogDep = Annotated[EventLog, Depends(get_event_log)]
GenerationRunnerDep = Annotated[GenerationRunner, Depends(get_generation_runner)]


def get_generation_service(session: SessionDep, events: EventLogDep) -> GenerationService:
    return GenerationService(session, events)


GenerationServiceDep = Annotated[GenerationService, Depends(get_generation_service)]
