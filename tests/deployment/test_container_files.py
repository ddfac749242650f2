"""The Dockerfile and compose.yaml of docs/deployment.md, checked as far as a machine without a
container engine allows: the compose file is what Compose itself accepts (`docker-compose
config`, where installed), every variable it gives genai-service is a real setting and its
values make valid production settings, every command is one the CLI parses, and the image is
built by `make install` and runs unprivileged."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.main import get_command

from genai_service.cli import app as cli_app
from genai_service.settings import Settings
from tests.test_configuration_docs import env_names

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
GENAI_IMAGE = "genai-service:local"
# What compose.yaml asks of its .env: a secret production accepts, a database password.
DOT_ENV = {
    "GENAI_SECRET_KEY": "Vb3kq9ZtXw2LmR7pHs5dNc8YfJg4TaUe",
    "POSTGRES_PASSWORD": "compose-test-password",
}
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z_]+)(?::\?[^}]*)?\}")


def _interpolated(value: str) -> str:
    return INTERPOLATION.sub(lambda match: DOT_ENV[match["name"]], value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _genai_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose["services"]
    return {name: s for name, s in services.items() if s.get("image") == GENAI_IMAGE}


def test_every_process_of_the_topology_is_a_service(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {
        "web",
        "worker",
        "model-host",
        "postgres",
        "redis",
        "qdrant",
    }
    assert set(_genai_services(compose)) == {"web", "worker", "model-host"}


def test_every_variable_is_a_setting_and_the_values_are_valid_production_settings(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    known = set(env_names(Settings, "GENAI_"))
    for name, service in _genai_services(compose).items():
        environment = {k: _interpolated(str(v)) for k, v in service["environment"].items()}
        assert [k for k in environment if k not in known] == [], name
        for variable in [v for v in os.environ if v.startswith("GENAI_")]:
            monkeypatch.delenv(variable)
        for variable, value in environment.items():
            monkeypatch.setenv(variable, value)
        settings = Settings(_env_file=None)
        assert settings.is_production, name
        if name != "model-host":
            assert settings.vectors.url == "http://qdrant:6333"
            assert settings.sqlalchemy_url.startswith("postgresql+asyncpg://genai:")
            for providers in [
                *settings.inference.chat_models.values(),
                *settings.inference.embedding_models.values(),
            ]:
                assert [p.base_url for p in providers] == ["http://model-host:8000/v1"]


def test_the_web_and_the_worker_share_the_upload_folder_and_not_ingestion(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert services["web"]["volumes"] == services["worker"]["volumes"] == ["shared-data:/data"]
    assert services["web"]["environment"]["GENAI_DOCUMENTS__RUN_INGESTION"] == "false"
    assert "ports" not in services["model-host"]
    assert compose["networks"]["backend"] == {"internal": True}


def test_every_command_is_one_the_cli_parses(compose: dict[str, Any]) -> None:
    """Parsed as `genai-service` would (an unknown option or a bad value raises), not run."""
    commands = getattr(get_command(cli_app), "commands", {})
    for name, service in _genai_services(compose).items():
        program, subcommand, *arguments = service["command"]
        assert program == "genai-service", name
        assert subcommand in commands, name
        commands[subcommand].make_context(subcommand, list(arguments))


def test_the_stop_grace_outlasts_the_drain(compose: dict[str, Any]) -> None:
    """The orchestrator must wait for the drain and uvicorn's 10 s for connections (and more)."""
    for name, service in _genai_services(compose).items():
        drain = int(service["environment"]["GENAI_HTTP__SHUTDOWN_GRACE_SECONDS"])
        stop_grace = int(str(service["stop_grace_period"]).removesuffix("s"))
        assert stop_grace >= drain + 15, name


def test_compose_accepts_the_file(tmp_path: Path) -> None:
    compose_command = shutil.which("docker-compose")
    if compose_command is None:
        pytest.skip("docker-compose is not installed (make system-deps installs it)")
    shutil.copy(COMPOSE, tmp_path / "compose.yaml")
    checked = subprocess.run(
        [compose_command, "--file", "compose.yaml", "config", "--quiet"],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], **DOT_ENV},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    missing = subprocess.run(
        [compose_command, "--file", "compose.yaml", "config", "--quiet"],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode != 0
    assert "set GENAI_SECRET_KEY in .env" in missing.stderr


def test_the_image_is_built_by_make_install_and_runs_unprivileged() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    assert any(line.startswith("RUN make install ") for line in instructions)
    for line in instructions:
        if line.startswith("COPY ") and "--from=" not in line:
            *sources, _target = line.split()[1:]
            assert [s for s in sources if not (ROOT / s).exists()] == [], line
    final_stage = max(i for i, line in enumerate(instructions) if line.startswith("FROM "))
    after_final = instructions[final_stage:]
    users = [line.split()[1] for line in after_final if line.startswith("USER ")]
    assert users
    assert users[-1] not in {"root", "0"}
    assert after_final[-1].startswith('CMD ["genai-service", "serve"')
