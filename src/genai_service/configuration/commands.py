"""The `genai-service config` commands, and loading settings for the other commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from genai_service.configuration.check import check_configuration
from genai_service.configuration.example import example_file
from genai_service.configuration.problems import Problem
from genai_service.settings import Settings

config_app = typer.Typer(help="The configuration file.", no_args_is_help=True)


@config_app.command("check")
def check(
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", help="The file to check; default: $GENAI_CONFIG, else ./genai-service.toml."
        ),
    ] = None,
) -> None:
    """Validate the file and the environment; print the effective settings, secrets masked."""
    result = check_configuration(file)
    if result.problems or result.settings is None:
        _report(result.problems)
        raise typer.Exit(1)
    typer.echo(result.effective_toml(), nl=False)


@config_app.command("example")
def example() -> None:
    """Print a configuration file with every setting, its default and what it does."""
    typer.echo(example_file(), nl=False)


def load_settings() -> Settings:
    """The settings, or every problem with its location and exit status 2."""
    result = check_configuration()
    if result.problems or result.settings is None:
        _report(result.problems)
        raise typer.Exit(2)
    return result.settings


def _report(problems: list[Problem]) -> None:
    for problem in problems:
        typer.echo(f"error: {problem}", err=True)
    typer.echo(f"{len(problems)} problem(s) in the configuration", err=True)
