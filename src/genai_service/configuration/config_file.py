"""The configuration file: where it is, what it says, and the settings source that reads it.

The file has the sections of the environment variables (`GENAI_INFERENCE__LOCAL_CHAT__N_CTX`
is `n_ctx` in `[inference.local_chat]`). A string value `"env:NAME"` stands for the variable
NAME, so a file holding no secret can be committed. Unlike an unknown environment variable, an
unknown key in the file is an error: it is a typo that would otherwise be ignored silently.
"""

from __future__ import annotations

import os
import re
import tomllib
import types
import typing
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_settings import BaseSettings, TomlConfigSettingsSource

from genai_service.configuration.problems import ConfigError, Problem
from genai_service.configuration.toml_lines import KeyPath, key_lines

CONFIG_VARIABLE = "GENAI_CONFIG"
DEFAULT_CONFIG_FILE = Path("genai-service.toml")
ENV_REFERENCE = re.compile(r"env:(?P<name>[A-Za-z_][A-Za-z0-9_]*)")
SYNTAX_ERROR_LINE = re.compile(
    r"^(?P<message>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)$"
)

_file_in_use: ContextVar[ConfigFile | None] = ContextVar("config_file_in_use", default=None)


def config_file_path(explicit: Path | None = None) -> Path | None:
    """The file to read: `explicit`, else `$GENAI_CONFIG`, else `./genai-service.toml` if any."""
    if explicit is not None:
        return explicit
    named = os.environ.get(CONFIG_VARIABLE)
    if named:
        return Path(named)
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def format_key_path(path: KeyPath) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + part
    return text


@dataclass
class ConfigFile:
    """A read configuration file: its data with `env:` references resolved, and its problems."""

    path: Path
    data: dict[str, Any] = field(default_factory=dict)
    """Without unknown keys and unresolved references, so the rest can still be validated."""
    problems: list[Problem] = field(default_factory=list)
    lines: dict[KeyPath, int] = field(default_factory=dict)

    @classmethod
    def read(
        cls,
        path: Path,
        settings_cls: type[BaseModel],
        environ: Mapping[str, str] = os.environ,
    ) -> ConfigFile:
        config = cls(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            config.problems.append(Problem(str(path), "no such file"))
            return config
        except (OSError, UnicodeDecodeError) as error:
            config.problems.append(Problem(str(path), f"cannot be read: {error}"))
            return config
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            config.problems.append(config._syntax_problem(str(error)))
            return config
        config.lines = key_lines(text)
        config.data = config._known(data, settings_cls, ())
        config.data = config._resolved(config.data, (), environ)
        return config

    @contextmanager
    def in_use(self) -> Iterator[None]:
        """Settings built inside this block read this file, problems or not (`config check`)."""
        token = _file_in_use.set(self)
        try:
            yield
        finally:
            _file_in_use.reset(token)

    def line_of(self, path: KeyPath) -> int | None:
        """The line of `path`, or of its nearest written ancestor."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None

    def location(self, path: KeyPath) -> str:
        line = self.line_of(path)
        return f"{self.path}:{line}" if line is not None else str(self.path)

    def has(self, path: KeyPath) -> bool:
        return path in self.lines

    def _syntax_problem(self, message: str) -> Problem:
        match = SYNTAX_ERROR_LINE.match(message)
        if match is None:
            return Problem(str(self.path), f"not valid TOML: {message}")
        return Problem(
            f"{self.path}:{match['line']}",
            f"not valid TOML: {match['message']} (column {match['column']})",
        )

    def _known(self, data: dict[str, Any], model: type[BaseModel], path: KeyPath) -> dict[str, Any]:
        known: dict[str, Any] = {}
        for key, value in data.items():
            field_info = model.model_fields.get(key)
            if field_info is None:
                self.problems.append(
                    Problem(
                        self.location((*path, key)),
                        f"unknown setting {format_key_path((*path, key))}",
                    )
                )
                continue
            known[key] = self._known_value(value, field_info.annotation, (*path, key))
        return known

    def _known_value(self, value: Any, annotation: Any, path: KeyPath) -> Any:
        """Check the keys of nested sections and provider tables; values are left to validation."""
        section = _model_in(annotation)
        if section is not None and isinstance(value, dict):
            return self._known(value, section, path)
        origin = typing.get_origin(annotation)
        arguments = typing.get_args(annotation)
        if origin is dict and isinstance(value, dict) and len(arguments) == 2:
            return {
                key: self._known_value(item, arguments[1], (*path, key))
                for key, item in value.items()
            }
        if origin is list and isinstance(value, list) and arguments:
            return [
                self._known_value(item, arguments[0], (*path, index))
                for index, item in enumerate(value)
            ]
        return value

    def _resolved(self, value: Any, path: KeyPath, environ: Mapping[str, str]) -> Any:
        if isinstance(value, dict):
            resolved = {}
            for key, item in value.items():
                result = self._resolved(item, (*path, key), environ)
                if result is not _UNRESOLVED:
                    resolved[key] = result
            return resolved
        if isinstance(value, list):
            return [
                self._resolved(item, (*path, index), environ) for index, item in enumerate(value)
            ]
        if isinstance(value, str) and (match := ENV_REFERENCE.fullmatch(value)):
            name = match["name"]
            if name in environ:
                return environ[name]
            self.problems.append(
                Problem(
                    self.location(path),
                    f"{format_key_path(path)} refers to the environment variable {name}, "
                    "which is not set",
                )
            )
            return _UNRESOLVED
        return value


_UNRESOLVED = object()


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The settings section an annotation stands for (`X`, `X | None`), if any."""
    candidates = typing.get_args(annotation) if _is_union(annotation) else (annotation,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


class ConfigFileSource(TomlConfigSettingsSource):
    """pydantic-settings' TOML source, reading the file through `ConfigFile`.

    Outside `ConfigFile.in_use`, any problem in the file stops the settings from loading: the
    server never starts on half a configuration.
    """

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        self._settings_cls = settings_cls
        chosen = _file_in_use.get()
        if chosen is None:
            path = config_file_path()
            chosen = ConfigFile.read(path, settings_cls) if path is not None else None
            if chosen is not None and chosen.problems:
                raise ConfigError(chosen.problems)
        self.config_file = chosen
        super().__init__(settings_cls, toml_file=chosen.path if chosen is not None else None)

    def _read_file(self, file_path: Path | Any) -> dict[str, Any]:
        return self.config_file.data if self.config_file is not None else {}
