from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from genai_service.settings import SECRET_MASK, Settings
from tests.conftest import PRODUCTION_SECRET


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


GUESSABLE_SECRETS = [
    "Password1Password1Password1Passw",
    "abcdefghijklmnopqrstuvwxyz0123456789",
    "qwertyuiopasdfghjklzxcvbnm1234567890",
    "0123456789abcdef" * 4,
    "k3y-" + "Zq9w" * 10,
]


@pytest.mark.parametrize("secret", GUESSABLE_SECRETS)
def test_production_refuses_a_long_but_guessable_secret(secret: str) -> None:
    assert len(secret) >= 32
    with pytest.raises(ValidationError) as refused:
        settings(env="production", secret_key=secret)
    assert "128 bits" in str(refused.value)
    assert "token_urlsafe" in str(refused.value)


@pytest.mark.parametrize("make", [lambda: secrets.token_urlsafe(32), lambda: secrets.token_hex(32)])
def test_production_accepts_generated_secrets(make: Callable[[], str]) -> None:
    for _ in range(200):
        settings(env="production", secret_key=make())


@pytest.mark.parametrize("secret", [*GUESSABLE_SECRETS, "short-Secret-9"])
def test_a_refusal_shows_no_part_of_the_secret(secret: str) -> None:
    with pytest.raises(ValidationError) as refused:
        settings(env="production", secret_key=secret)
    error = refused.value
    shown = [str(error), repr(error), error.json(), str(error.errors())]
    tails = {secret[i:] for i in range(len(secret) - 6)}  # every tail of 6 characters or more
    assert not any(tail in text for tail in tails for text in shown)
    assert all(problem["input"] == SECRET_MASK for problem in error.errors())


def test_the_cli_names_the_rule_and_not_the_secret(tmp_path: Path) -> None:
    secret = "Password1Password1Password1Passw"
    result = subprocess.run(
        [sys.executable, "-m", "genai_service", "db", "upgrade"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("GENAI_")},
            "GENAI_ENV": "production",
            "GENAI_SECRET_KEY": secret,
            "GENAI_DATA_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "error: GENAI_SECRET_KEY: GENAI_SECRET_KEY is guessable" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Passw" not in result.stdout + result.stderr


def test_production_refuses_wildcard_cors_with_credentials() -> None:
    with pytest.raises(ValidationError, match="CORS"):
        settings(
            env="production",
            secret_key=PRODUCTION_SECRET,
            cors={"origins": ["*"], "allow_credentials": True},
        )


def test_production_defaults() -> None:
    s = settings(env="production", secret_key=PRODUCTION_SECRET)
    assert s.show_docs is False
    assert s.json_logs is True
