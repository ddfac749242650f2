"""`genai-service limits set/show/clear` and `genai-service usage`: the operator's view of the
limits API and the usage reports, straight on the database (no server or admin token needed).

`limits set` changes only the fields it is given: the others keep the user's (or key's) own
value, or, for one without limits of its own yet, its role's default (a user) or none (a key).
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from genai_service.command_session import (
    fail_validation,
    prepared_settings,
    run_in_runtime,
    run_in_session,
)
from genai_service.guards.limits import LIMIT_FIELDS
from genai_service.guards.limits_service import LimitsService
from genai_service.guards.periods import Periods
from genai_service.guards.schemas import KeyLimitsRead, UsageRowRead, UserLimitsRead
from genai_service.guards.usage_repository import Grouping, UsageFilter
from genai_service.guards.usage_service import UsageService
from genai_service.kit.db import utcnow
from genai_service.kit.pagination import PageParams
from genai_service.runtime import Runtime
from genai_service.settings import Limits
from genai_service.users.service import UserService

limits_app = typer.Typer(
    help="Token budgets and rate limits of users and API keys.", no_args_is_help=True
)

REPORT_ROWS = 1000
"""Rows `genai-service usage` prints at most (narrow it with --email, --since, --by)."""

Email = Annotated[str | None, typer.Option(help="The user's email.")]
KeyId = Annotated[uuid.UUID | None, typer.Option("--key", help="An API key's id, instead.")]


def _limit_value(value: str | None) -> str | None:
    """A limit as typed: a whole number, or `none` for no limit."""
    if value is None or value.strip().lower() == "none":
        return value
    if not value.strip().isdigit():
        raise typer.BadParameter("a whole number, or `none` for no limit")
    return value


def _limit_option(help_text: str) -> Any:
    return typer.Option(help=f"{help_text}; `none`: no limit.", callback=_limit_value)


def _subject(email: str | None, key: uuid.UUID | None) -> str | uuid.UUID:
    """The one of `--email` and `--key` given (exit 2 unless exactly one is)."""
    if email is not None and key is None:
        return email
    if key is not None and email is None:
        return key
    typer.echo("error: give either --email or --key", err=True)
    raise typer.Exit(2)


async def _user_id(session: AsyncSession, email: str) -> uuid.UUID:
    return (await UserService(session).get_by_email(email)).id


def _show(read: UserLimitsRead | KeyLimitsRead) -> None:
    if isinstance(read, UserLimitsRead):
        title, base_name, base = f"user {read.user_id}", "role default", read.role_defaults
    else:
        title, base_name, base = f"API key {read.api_key_id}", "owner's", read.owner
    table = Table(title=f"Limits of {title}")
    for column in ("limit", "own", base_name, "in force"):
        table.add_column(column, justify="left" if column == "limit" else "right")

    def cell(limits: Limits | None, name: str) -> str:
        if limits is None:
            return "-"
        value = getattr(limits, name)
        return "none" if value is None else f"{value:,}"

    for name in LIMIT_FIELDS:
        table.add_row(name, cell(read.own, name), cell(base, name), cell(read.in_force, name))
    Console().print(table)


@limits_app.command("show")
def show(email: Email = None, key: KeyId = None) -> None:
    """A user's (or key's) own limits, the defaults under them, and the limits in force."""
    subject = _subject(email, key)
    settings = prepared_settings()

    async def read(session: AsyncSession) -> UserLimitsRead | KeyLimitsRead:
        service = LimitsService(session, settings.limits)
        if isinstance(subject, uuid.UUID):
            return await service.of_key(None, subject)
        return await service.of_user(await _user_id(session, subject))

    _show(run_in_session(read, settings))


@limits_app.command("set")
def set_limits(
    email: Email = None,
    key: KeyId = None,
    tokens_per_day: Annotated[str | None, _limit_option("Tokens per UTC day")] = None,
    tokens_per_month: Annotated[str | None, _limit_option("Tokens per UTC month")] = None,
    requests_per_minute: Annotated[str | None, _limit_option("Model calls per minute")] = None,
    tokens_per_minute: Annotated[str | None, _limit_option("Tokens per minute")] = None,
    max_concurrent: Annotated[str | None, _limit_option("Model calls in flight at once")] = None,
) -> None:
    """Set a user's (or key's) own limits; the fields not given keep their value. A key's
    limits can only be tighter than its owner's."""
    subject = _subject(email, key)
    given = {
        name: value
        for name, value in {
            "tokens_per_day": tokens_per_day,
            "tokens_per_month": tokens_per_month,
            "requests_per_minute": requests_per_minute,
            "tokens_per_minute": tokens_per_minute,
            "max_concurrent": max_concurrent,
        }.items()
        if value is not None
    }
    if not given:
        typer.echo("error: give at least one limit (see --help)", err=True)
        raise typer.Exit(2)
    changes = {
        name: None if value.strip().lower() == "none" else int(value)
        for name, value in given.items()
    }
    settings = prepared_settings()

    async def update(session: AsyncSession, runtime: Runtime) -> UserLimitsRead | KeyLimitsRead:
        service = LimitsService(session, settings.limits, cache=runtime.limits)
        if isinstance(subject, uuid.UUID):
            current_key = await service.of_key(None, subject)
            limits = _changed(current_key.own or Limits(), changes)
            return await service.set_for_key(None, subject, limits)
        user_id = await _user_id(session, subject)
        current = await service.of_user(user_id)
        limits = _changed(current.own or current.role_defaults, changes)
        return await service.set_for_user(None, user_id, limits)

    _show(run_in_runtime(update, settings))


def _changed(limits: Limits, changes: dict[str, int | None]) -> Limits:
    try:
        return Limits.model_validate({**limits.model_dump(), **changes})
    except ValidationError as error:
        raise fail_validation(error) from None


@limits_app.command("clear")
def clear(email: Email = None, key: KeyId = None) -> None:
    """Remove a user's (or key's) own limits: the role's defaults (the owner's) apply again."""
    subject = _subject(email, key)
    settings = prepared_settings()

    async def remove(session: AsyncSession, runtime: Runtime) -> None:
        service = LimitsService(session, settings.limits, cache=runtime.limits)
        if isinstance(subject, uuid.UUID):
            await service.clear_for_key(None, subject)
            return
        await service.clear_for_user(None, await _user_id(session, subject))

    run_in_runtime(remove, settings)
    typer.echo(f"cleared the limits of {email or f'API key {key}'}")


def usage(
    email: Email = None,
    since: Annotated[
        str | None,
        typer.Option(help="First UTC day, YYYY-MM-DD; default: the first of this month."),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Last UTC day (included), YYYY-MM-DD; default: today.")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    by: Annotated[
        list[str] | None,
        typer.Option(
            help="Sum per day, model, user or key; repeat to combine. Default: user, model."
        ),
    ] = None,
) -> None:
    """Calls and tokens per user and model (or as --by groups them), from the usage ledger."""
    grouping = _grouping(by or ["user", "model"])
    today = Periods.at(utcnow())
    first, last = _day(since, "--since") or today.month, _day(until, "--until") or today.day
    settings = prepared_settings()

    async def report(session: AsyncSession) -> tuple[list[UsageRowRead], int]:
        user_id = await _user_id(session, email) if email is not None else None
        where = UsageFilter(since=first, until=last, user_id=user_id, model=model)
        page = PageParams(offset=0, limit=REPORT_ROWS)
        return await UsageService(session, settings.limits).report(where, grouping, page)

    rows, total = run_in_session(report, settings)
    _print_report(rows, total, grouping, first, last)


def _grouping(values: list[str]) -> list[Grouping]:
    allowed: dict[str, Grouping] = {"day": "day", "model": "model", "user": "user", "key": "key"}
    for value in values:
        if value not in allowed:
            raise typer.BadParameter("day, model, user or key", param_hint="--by")
    return [allowed[value] for value in values]


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("a date as YYYY-MM-DD", param_hint=option) from None


def _print_report(
    rows: list[UsageRowRead],
    total: int,
    grouping: list[Grouping],
    first: date,
    last: date,
) -> None:
    table = Table(title=f"Usage {first} to {last} (UTC)")
    columns = {"day": "day", "user": "user", "key": "API key", "model": "model"}
    shown = [group for group in columns if group in grouping]
    for group in shown:
        table.add_column(columns[group])
    for column in ("calls", "prompt", "completion", "total"):
        table.add_column(column, justify="right")
    for row in rows:
        cells = {
            "day": str(row.day),
            "user": row.email or str(row.user_id),
            "key": str(row.api_key_id) if row.api_key_id else "-",
            "model": row.model or "",
        }
        table.add_row(
            *(cells[group] for group in shown),
            f"{row.calls:,}",
            f"{row.prompt_tokens:,}",
            f"{row.completion_tokens:,}",
            f"{row.total_tokens:,}",
        )
    console = Console()
    console.print(table)
    if total > len(rows):
        console.print(f"{total - len(rows)} more rows: narrow with --email, --since or --by")
