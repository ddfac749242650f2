"""`config check`: load the settings as the server would and report every problem where it is."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dotenv import dotenv_values
from pydantic import ValidationError
from pydantic_settings import SettingsError

from genai_service.configuration.config_file import ConfigFile, config_file_path, format_key_path
from genai_service.configuration.problems import Problem
from genai_service.configuration.toml_lines import KeyPath
from genai_service.configuration.toml_render import Layout, render
from genai_service.inference.registry import ModelRegistry
from genai_service.settings import InferenceSettings, Settings

ENV_PREFIX = "GENAI_"
ENV_NESTED_DELIMITER = "__"
DOTENV_FILE = Path(".env")
MASK = "**********"
DEFAULT_MODEL_FIELDS = ("default_chat_model", "default_embedding_model")


@dataclass
class Variables:
    """The `GENAI_` variables the settings read, by upper-case name, and where each was set."""

    values: dict[str, str] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)

    @classmethod
    def current(cls, environ: Mapping[str, str] = os.environ) -> Variables:
        variables = cls()
        if DOTENV_FILE.is_file():
            for name, value in dotenv_values(DOTENV_FILE).items():
                if value is not None and name.upper().startswith(ENV_PREFIX):
                    variables.values[name.upper()] = value
                    variables.origins[name.upper()] = f"{DOTENV_FILE}: {name.upper()}"
        for name, value in environ.items():
            if name.upper().startswith(ENV_PREFIX):
                variables.values[name.upper()] = value
                variables.origins[name.upper()] = f"environment variable {name.upper()}"
        return variables

    def origin(self, path: KeyPath) -> str | None:
        """The variable that set `path`: a variable for it, or for a section holding it as JSON."""
        for end in range(1, len(path) + 1):
            if any(isinstance(part, int) for part in path[:end]):
                return None
            name = ENV_PREFIX + ENV_NESTED_DELIMITER.join(str(part).upper() for part in path[:end])
            if name in self.values and _json_has(self.values[name], path[end:]):
                return self.origins[name]
        return None


@dataclass
class CheckResult:
    config_file: ConfigFile | None
    variables: Variables
    settings: Settings | None = None
    problems: list[Problem] = field(default_factory=list)

    def effective_toml(self) -> str:
        """The effective settings as a configuration file, secrets masked, origins noted."""
        if self.settings is None:
            raise ValueError("the settings did not load: report the problems instead")
        source = f"configuration file {self.config_file.path}" if self.config_file else "no file"
        header = f"# The effective settings ({source}; secrets masked).\n\n"
        values = _masked(self.settings.model_dump(mode="json"))
        return header + render(Settings, values, Layout(example=False, note=self._origin))

    def _origin(self, path: KeyPath) -> str | None:
        variable = self.variables.origin(path)
        if variable is not None:
            return variable
        if self.config_file is not None and self.config_file.has(path):
            return self.config_file.location(path)
        return None


def check_configuration(explicit_file: Path | None = None) -> CheckResult:
    """Read the file and the environment as `Settings()` does, collecting every problem."""
    path = config_file_path(explicit_file)
    config = ConfigFile.read(path, Settings) if path is not None else None
    result = CheckResult(config, Variables.current())
    if config is not None:
        result.problems.extend(config.problems)
    try:
        with config.in_use() if config is not None else nullcontext():
            result.settings = Settings()
    except ValidationError as error:
        result.problems.extend(
            result_problem(result, tuple(detail["loc"]), detail["msg"]) for detail in error.errors()
        )
    except SettingsError as error:
        # A variable holding malformed JSON: pydantic-settings names the field and the source.
        result.problems.append(Problem("environment", str(error)))
    if result.settings is not None:
        _check_default_models(result, result.settings.inference)
    return result


def _check_default_models(result: CheckResult, inference: InferenceSettings) -> None:
    """A default model that names no configured model stops the server when it builds its models."""
    try:
        ModelRegistry.from_settings(inference)
    except ValueError as error:
        path: KeyPath = ("inference",)
        for name in DEFAULT_MODEL_FIELDS:
            if repr(getattr(inference, name)) in str(error):
                path = ("inference", name)
        result.problems.append(result_problem(result, path, str(error)))


def result_problem(result: CheckResult, path: KeyPath, text: str) -> Problem:
    """A problem with the setting at `path`, located at the variable or file line that set it."""
    message = f"{format_key_path(path)}: {text}" if path else text
    variable = result.variables.origin(path) if path else None
    if variable is not None:
        return Problem(variable, message)
    if path and result.config_file is not None and result.config_file.line_of(path) is not None:
        return Problem(result.config_file.location(path), message)
    return Problem("settings", message)


def _json_has(raw: str, path: KeyPath) -> bool:
    """Whether a variable's value holds `path`: a plain value holds only itself."""
    if not path:
        return True
    try:
        value: Any = json.loads(raw)
    except ValueError:
        return False
    for part in path:
        if isinstance(value, dict):
            found = part in value
        else:
            found = isinstance(value, list) and isinstance(part, int) and part < len(value)
        if not found:
            return False
        value = value[part]
    return True


def _masked(value: Any) -> Any:
    """Secrets are already masked by SecretStr; a password inside a URL is masked here."""
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    if isinstance(value, str) and "://" in value:
        parts = urlsplit(value)
        if parts.password:
            netloc = f"{parts.username or ''}:{MASK}@{parts.hostname or ''}"
            if parts.port is not None:
                netloc += f":{parts.port}"
            return urlunsplit(parts._replace(netloc=netloc))
    return value
