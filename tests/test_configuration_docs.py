from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from genai_service.configuration.config_file import ConfigFile
from genai_service.settings import Settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
# Provider entries are documented as a whole (their keys are listed below the table).
DOCUMENTED_AS_A_WHOLE = {"GENAI_INFERENCE__CHAT_MODELS", "GENAI_INFERENCE__EMBEDDING_MODELS"}


def env_names(model: type[BaseModel], prefix: str) -> list[str]:
    names: list[str] = []
    for field_name, field in model.model_fields.items():
        name = f"{prefix}{field_name.upper()}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names.extend(env_names(annotation, name + "__"))
        else:
            names.append(name)
    return names


def test_every_setting_is_documented() -> None:
    text = DOC.read_text()
    missing = [name for name in env_names(Settings, "GENAI_") if f"`{name}`" not in text]
    assert missing == []
    assert set(env_names(Settings, "GENAI_")) >= DOCUMENTED_AS_A_WHOLE


ROOT = Path(__file__).resolve().parents[1]
TOML_BLOCK = re.compile(r"^```toml\n(.*?)^```", re.M | re.S)
TABLE_ROW = re.compile(r"^\| `(GENAI_[A-Z_]+)` \| ([^|]*) \|", re.M)
ENV_REFERENCE = re.compile(r'"env:([A-Za-z_][A-Za-z0-9_]*)"')


def defaults_by_variable(model: type[BaseModel], prefix: str) -> dict[str, object]:
    defaults: dict[str, object] = {}
    instance = model.model_construct()
    for field_name, field in model.model_fields.items():
        name = f"{prefix}{field_name.upper()}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            defaults |= defaults_by_variable(annotation, name + "__")
        else:
            defaults[name] = getattr(instance, field_name)
    return defaults


def test_documented_variables_exist_and_their_defaults_agree_with_the_model() -> None:
    defaults = defaults_by_variable(Settings, "GENAI_")
    rows = TABLE_ROW.findall(DOC.read_text())
    assert [name for name, _ in rows if name not in defaults] == []
    disagreeing = []
    for name, cell in rows:
        default = defaults[name]
        if isinstance(default, bool):
            expected = ["true" if default else "false"]
        elif isinstance(default, int | float):
            expected = [repr(default), f"{default:g}"]
        elif isinstance(default, str):
            expected = [default]
        else:  # unset, a path or a collection: described in words
            continue
        written = re.match(r"\s*`([^`]*)`", cell)
        if written is None or written[1] not in expected:
            disagreeing.append((name, cell.strip(), expected))
    assert disagreeing == []


@pytest.mark.parametrize("document", ["README.md", "docs/configuration.md", "docs/models.md"])
def test_configuration_file_examples_are_valid(document: str, tmp_path: Path) -> None:
    blocks = TOML_BLOCK.findall((ROOT / document).read_text())
    assert blocks
    for number, block in enumerate(blocks):
        path = tmp_path / f"example-{number}.toml"
        path.write_text(block)
        environ = dict.fromkeys(ENV_REFERENCE.findall(block), "postgresql+asyncpg://u:p@db/app")
        config = ConfigFile.read(path, Settings, environ=environ)
        assert config.problems == [], block
        with config.in_use():
            Settings(_env_file=None)
