"""The `genai-service` command line."""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path
from typing import Annotated

import httpx
import typer
import uvicorn
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from genai_service.api_keys.schemas import ApiKeyCreate
from genai_service.api_keys.service import ApiKeyService
from genai_service.command_session import fail_validation, prepared_settings, run_in_session
from genai_service.configuration.commands import config_app
from genai_service.conversations.terminal_client import AskFailed, Question, ask, connect
from genai_service.documents.worker import (
    add_files,
    files_under,
    follow_until_final,
    ingestion_context,
    run_worker,
)
from genai_service.guards.commands import limits_app, usage
from genai_service.kit.db import create_engine
from genai_service.kit.errors import AppError
from genai_service.migrations import upgrade_database
from genai_service.models.document import Document, DocumentStatus
from genai_service.models.user import ANONYMOUS_USER_ID, Role
from genai_service.serving import server_options
from genai_service.users.schemas import UserCreate
from genai_service.users.service import UserService

app = typer.Typer(
    help="genai-service: a self-hostable generative-AI backend.",
    no_args_is_help=True,
    # A traceback with locals would print settings, secrets included.
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
users_app = typer.Typer(help="Accounts.", no_args_is_help=True)
app.add_typer(users_app, name="users")
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(config_app, name="config")
app.add_typer(limits_app, name="limits")
app.command("usage")(usage)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False,
) -> None:
    """Serve the API with uvicorn."""
    settings = prepared_settings()
    uvicorn.run(
        "genai_service.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        **server_options(settings.http.shutdown_grace_seconds),
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    settings = prepared_settings()

    async def run() -> None:
        engine = create_engine(settings.sqlalchemy_url)
        try:
            await upgrade_database(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())
    typer.echo("database is up to date")


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="The login name.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            help="Asked for when left out (keeps it out of the shell history).",
        ),
    ],
    admin: Annotated[
        bool, typer.Option("--admin", help="Give the account the admin role.")
    ] = False,
    full_name: Annotated[str | None, typer.Option(help="Display name.")] = None,
) -> None:
    """Create an account (also when self-registration is closed)."""
    try:
        data = UserCreate(email=email, password=password, full_name=full_name)
    except ValidationError as error:
        raise fail_validation(error) from None
    role = Role.ADMIN if admin else Role.USER
    user = run_in_session(lambda session: UserService(session).create(data, role=role))
    typer.echo(f"created {role.value} {user.email} (id {user.id})")


@keys_app.command("create")
def keys_create(
    email: Annotated[str, typer.Option(help="The owner's email.")],
    name: Annotated[str, typer.Option(help="What the key is for.")],
) -> None:
    """Create an API key and print its secret: the only time it is shown."""
    try:
        data = ApiKeyCreate(name=name)
    except ValidationError as error:
        raise fail_validation(error) from None

    async def create(session: AsyncSession) -> str:
        owner = await UserService(session).get_by_email(email)
        _, secret = await ApiKeyService(session).create(owner, data)
        return secret

    secret = run_in_session(create)
    typer.echo(f"API key {name!r} for {email.strip().lower()}; it is not shown again:", err=True)
    typer.echo(secret)


@app.command()
def worker(
    drain: Annotated[
        bool, typer.Option("--drain", help="Exit once no queued document is left.")
    ] = False,
) -> None:
    """Ingest queued documents in this process.

    Set GENAI_DOCUMENTS__RUN_INGESTION=false on the servers and point everything at a Qdrant
    server (GENAI_VECTORS__URL): an embedded Qdrant folder is opened by one process at a time.
    """
    settings = prepared_settings()
    try:
        count = asyncio.run(run_worker(settings, drain=drain))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    if drain:
        typer.echo(f"{count} document(s) ingested")


@app.command()
def ingest(
    paths: Annotated[
        list[Path], typer.Argument(exists=True, help="Files, or folders to ingest every file of.")
    ],
    email: Annotated[
        str | None, typer.Option(help="The owner's email; default: the anonymous user.")
    ] = None,
) -> None:
    """Add documents and ingest them here, with a progress bar per file.

    It opens the vector store itself: stop a server that uses the same embedded Qdrant folder
    first, or point both at a Qdrant server.
    """
    from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn

    settings = prepared_settings()
    files = files_under(paths)
    if not files:
        typer.echo("no files found", err=True)
        raise typer.Exit(1)

    async def run() -> list[Document]:
        async with ingestion_context(settings) as context:
            owner_id = ANONYMOUS_USER_ID
            if email is not None:
                async with context.sessionmaker() as session:
                    owner_id = (await UserService(session).get_by_email(email)).id
            outcomes = await add_files(context, settings, owner_id, files)
            bars: dict[uuid.UUID, TaskID] = {}
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[status]}"),
            ) as progress:
                for outcome in outcomes:
                    if outcome.document is None:
                        progress.console.print(
                            f"[red]skipped[/] {outcome.path}: {outcome.rejected}"
                        )
                        continue
                    bars[outcome.document.id] = progress.add_task(
                        str(outcome.path), total=1.0, status="queued"
                    )

                def show(document: Document) -> None:
                    progress.update(
                        bars[document.id], completed=document.progress, status=document.status
                    )

                return await follow_until_final(context, list(bars), show)

    try:
        documents = asyncio.run(run())
    except AppError as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(1) from None
    failed = [d for d in documents if d.status is not DocumentStatus.INDEXED]
    for document in failed:
        typer.echo(f"{document.filename}: {document.status}: {document.error or ''}", err=True)
    typer.echo(f"{len(documents) - len(failed)} of {len(files)} file(s) indexed")
    if failed or len(documents) < len(files):
        raise typer.Exit(1)


@app.command("ask")
def ask_command(
    question: Annotated[str, typer.Argument(help="What to ask.")],
    url: Annotated[str, typer.Option(help="The server.")] = "http://127.0.0.1:8000",
    token: Annotated[
        str | None,
        typer.Option(envvar="GENAI_TOKEN", help="An access token or API key; none: anonymous."),
    ] = None,
    documents: Annotated[
        str | None,
        typer.Option(help='Answer from documents: "all", or document ids separated by commas.'),
    ] = None,
    conversation: Annotated[
        str | None, typer.Option(help="Continue this conversation; default: a new one.")
    ] = None,
    max_tokens: Annotated[int | None, typer.Option(min=1, help="Longest reply.")] = None,
    temperature: Annotated[float | None, typer.Option(min=0, max=2)] = None,
) -> None:
    """Ask a running server, print the reply as it streams and the sources it cites."""
    scope: str | list[str] | None = documents
    if documents is not None and documents != "all":
        scope = [item.strip() for item in documents.split(",") if item.strip()]
    request = Question(
        content=question,
        documents=scope,
        conversation_id=conversation,
        max_tokens=max_tokens,
        temperature=temperature,
    )
    try:
        with connect(url, token) as client:
            ask(client, request, sys.stdout)
    except (AskFailed, httpx.HTTPError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
