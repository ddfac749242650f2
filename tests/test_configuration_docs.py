from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

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
