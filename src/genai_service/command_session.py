"""What the `genai-service` commands share: settings made ready, and their work run in one
committed session of a runtime opened as the server opens it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from genai_service.composition import open_runtime
from genai_service.configuration.commands import load_settings
from genai_service.kit.db import request_session
from genai_service.kit.errors import AppError
from genai_service.kit.logging import configure_logging
from genai_service.runtime import Runtime
from genai_service.settings import Settings

T = TypeVar("T")


def prepared_settings() -> Settings:
    """The settings from the environment, the data dir ready and logging configured; invalid
    settings end the command with their rules listed."""
    settings = load_settings()
    settings.prepare_data_dir()
    configure_logging(level=settings.log_level, json_lines=settings.json_logs)
    return settings


def run_in_session(
    work: Callable[[AsyncSession], Awaitable[T]], settings: Settings | None = None
) -> T:
    """Run `work` in one committed session, migrating first as the server would; an `AppError`
    ends the command with its detail and exit status 1."""

    async def in_session(session: AsyncSession, _: Runtime) -> T:
        return await work(session)

    return run_in_runtime(in_session, settings)


def run_in_runtime(
    work: Callable[[AsyncSession, Runtime], Awaitable[T]], settings: Settings | None = None
) -> T:
    """`run_in_session` for work that also needs the runtime's parts (its caches, which tell
    the servers sharing Redis of a change once it is committed)."""
    settings = settings or prepared_settings()

    async def run() -> T:
        async with (
            open_runtime(settings, mode="tool") as runtime,
            request_session(runtime.sessionmaker) as session,
        ):
            return await work(session, runtime)

    try:
        return asyncio.run(run())
    except AppError as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(1) from None


def fail_validation(error: ValidationError) -> typer.Exit:
    """Each refused field and its rule; never the refused value (it may be a secret)."""
    for problem in error.errors(include_input=False):
        field = ".".join(str(part) for part in problem["loc"])
        typer.echo(f"error: {field or 'settings'}: {problem['msg']}", err=True)
    return typer.Exit(2)
