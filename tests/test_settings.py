from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from genai_service.settings import Settings

STRONG_SECRET = "v3ry-Random-Production-Secret-Key-0123456789"


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_defaults() -> None:
    s = settings()
    assert s.env == "development"
    assert s.data_dir == Path("data")
    assert s.sqlalchemy_url.startswith("sqlite+aiosqlite:///")
    assert s.sqlalchemy_url.endswith("/data/genai.db")
    assert s.show_docs is True
    assert s.json_logs is False


def test_environment_variables_and_nested_sections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENAI_DATABASE_URL", "postgresql+asyncpg://u@db/app")
    monkeypatch.setenv("GENAI_CORS__ORIGINS", '["https://a.example"]')
    monkeypatch.setenv("GENAI_HTTP__MAX_BODY_BYTES", "2048")
    s = settings()
    assert s.sqlalchemy_url == "postgresql+asyncpg://u@db/app"
    assert s.cors.origins == ["https://a.example"]
    assert s.http.max_body_bytes == 2048


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("GENAI_LOG_LEVEL=DEBUG\nGENAI_NAME=my-genai\n")
    s = Settings(_env_file=env_file)
    assert (s.log_level, s.name) == ("DEBUG", "my-genai")


def test_development_generates_a_secret_once_and_keeps_it(tmp_path: Path) -> None:
    first = settings(data_dir=tmp_path / "fresh")
    first.prepare_data_dir()
    second = settings(data_dir=tmp_path / "fresh")
    second.prepare_data_dir()
    assert first.secret_key is not None
    assert second.secret_key is not None
    assert first.secret_key.get_secret_value() == second.secret_key.get_secret_value()
    assert len(first.secret_key.get_secret_value()) >= 32
    assert (tmp_path / "fresh" / "secret_key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("secret", [None, "short", "a" * 64])
def test_production_refuses_a_missing_or_weak_secret(secret: str | None) -> None:
    with pytest.raises(ValidationError, match="GENAI_SECRET_KEY"):
        settings(env="production", secret_key=secret)


def test_production_refuses_wildcard_cors_with_credentials() -> None:
    with pytest.raises(ValidationError, match="CORS"):
        settings(
            env="production",
            secret_key=STRONG_SECRET,
            cors={"origins": ["*"], "allow_credentials": True},
        )


def test_production_defaults() -> None:
    s = settings(env="production", secret_key=STRONG_SECRET)
    assert s.show_docs is False
    assert s.json_logs is True
