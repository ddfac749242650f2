"""Settings written as a configuration file, walked from the settings model.

Both `config example` (every setting commented out at its default, its docstring above it) and
`config check` (the effective values) are written here, so neither can drift from the model.
"""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from genai_service.configuration.config_file import format_key_path
from genai_service.configuration.toml_lines import KeyPath

BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")

Note = Callable[[KeyPath], str | None]


@dataclass(frozen=True)
class Layout:
    example: bool
    """Comment out every value and show only what differs from a provider's defaults."""
    note: Note | None = None
    """A trailing comment per written value (where it came from)."""


def render(model: type[BaseModel], values: Mapping[str, Any], layout: Layout) -> str:
    """`values` is `model_dump(mode="json")` of an instance of `model`."""
    lines: list[str] = []
    _table(lines, model, values, (), layout)
    return "\n".join(lines).strip("\n") + "\n"


def provider_map_item(annotation: Any) -> type[BaseModel] | None:
    """The provider model of a `dict[str, list[Provider]]` field, which is written as a table."""
    if typing.get_origin(annotation) is not dict:
        return None
    item = typing.get_args(annotation)[1]
    if typing.get_origin(item) is not list:
        return None
    (provider,) = typing.get_args(item)
    return provider if isinstance(provider, type) and issubclass(provider, BaseModel) else None


def section_model(annotation: Any) -> type[BaseModel] | None:
    return (
        annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    )


def _table(
    lines: list[str],
    model: type[BaseModel],
    values: Mapping[str, Any],
    path: KeyPath,
    layout: Layout,
) -> None:
    sections: list[tuple[str, FieldInfo]] = []
    for name, field in model.model_fields.items():
        if section_model(field.annotation) or provider_map_item(field.annotation):
            sections.append((name, field))
            continue
        if layout.example:
            _comment(lines, field.description)
        _assignment(lines, name, values.get(name), (*path, name), layout)
    for name, field in sections:
        lines.append("")
        nested = section_model(field.annotation)
        if layout.example:
            _comment(lines, field.description or (nested.__doc__ if nested else None))
        header = f"[{format_key_path((*path, name))}]"
        if nested is not None:
            lines.append(header)
            _table(lines, nested, values.get(name) or {}, (*path, name), layout)
            continue
        provider = provider_map_item(field.annotation) or BaseModel
        # An empty table would replace the default models: the example leaves it commented out.
        lines.append(f"#{header}" if layout.example else header)
        if layout.example:
            _provider_keys(lines, provider)
        for model_name, chain in (values.get(name) or {}).items():
            _chain(lines, provider, model_name, chain, (*path, name, model_name), layout)


def _assignment(lines: list[str], name: str, value: Any, path: KeyPath, layout: Layout) -> None:
    note = layout.note(path) if layout.note else None
    suffix = f"  # {note}" if note else ""
    if value is None:
        lines.append(f"#{_key(name)} ={suffix}")
        return
    prefix = "#" if layout.example else ""
    lines.append(f"{prefix}{_key(name)} = {_value(value)}{suffix}")


def _chain(
    lines: list[str],
    provider: type[BaseModel],
    model_name: str,
    chain: list[dict[str, Any]],
    path: KeyPath,
    layout: Layout,
) -> None:
    prefix = "#" if layout.example else ""
    note = layout.note(path) if layout.note else None
    suffix = f"  # {note}" if note else ""
    defaults = provider().model_dump(mode="json")
    entries = [
        _value(
            {
                key: value
                for key, value in entry.items()
                if not (layout.example and key != "kind" and value == defaults[key])
            }
        )
        for entry in chain
    ]
    if len(entries) == 1:
        lines.append(f"{prefix}{_key(model_name)} = [{entries[0]}]{suffix}")
        return
    lines.append(f"{prefix}{_key(model_name)} = [{suffix}")
    lines.extend(f"{prefix}  {entry}," for entry in entries)
    lines.append(f"{prefix}]")


def _provider_keys(lines: list[str], provider: type[BaseModel]) -> None:
    lines.append("# Each provider is an inline table; its keys, with their defaults:")
    defaults = provider().model_dump(mode="json")
    for name, field in provider.model_fields.items():
        default = defaults[name]
        shown = f"{name} = {_value(default)}" if default is not None else f"{name} (unset)"
        description = (field.description or "").replace("\n", " ")
        lines.append(f"#   {shown}: {description}")


def _comment(lines: list[str], text: str | None) -> None:
    for line in (text or "").splitlines():
        lines.append(f"# {line}".rstrip())


def _key(name: str) -> str:
    return name if BARE_KEY.fullmatch(name) else _string(name)


def _string(text: str) -> str:
    """A TOML basic string; JSON's escapes are a subset of TOML's, DEL needs escaping too."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(
            f"{_key(key)} = {_value(item)}" for key, item in value.items() if item is not None
        )
        return "{ " + items + " }" if items else "{}"
    raise TypeError(f"no TOML form for {value!r}")
