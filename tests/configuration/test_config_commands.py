"""`genai-service config check` and `config example`, as a user runs them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from genai_service.cli import app
from genai_service.configuration.config_file import ConfigFile
from genai_service.configuration.toml_render import provider_map_item, section_model
from genai_service.settings import Settings

GOOD = """\
database_url = "postgresql+asyncpg://genai:db-password@db:5432/genai"

[inference]
default_chat_model = "assistant"

[inference.chat_models]
assistant = [
  { kind = "openai_compatible", base_url = "http://vl/v1", api_key = "env:VLLM_KEY", timeout = 30 },
  { kind = "local" },
]

[inference.local_chat]
n_ctx = 4096
"""

BAD = """\
log_levl = "DEBUG"

[inference.chat_models]
assistant = [
  { kind = "openai_compatible", base_url = "http://vllm:8001/v1", api_key = "env:NOT_SET_KEY" },
  { kind = "local", timeout = -1 },
  { kind = "remote" },
]

[inference.local_chat]
n_ctx = 100

[documents]
chunk_tokens = 30
chunk_overlap = 30
"""


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A working directory without .env or genai-service.toml, and no GENAI_ variables."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GENAI_CONFIG")
    for name in [name for name in __import__("os").environ if name.startswith("GENAI_")]:
        monkeypatch.delenv(name)
    return CliRunner()


def test_check_prints_the_effective_settings_with_secrets_masked(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "service.toml"
    path.write_text(GOOD)
    monkeypatch.setenv("VLLM_KEY", "sk-very-secret")
    monkeypatch.setenv("GENAI_INFERENCE__LOCAL_CHAT__N_SEQ_MAX", "2")
    result = runner.invoke(app, ["config", "check", "--file", str(path)])
    assert result.exit_code == 0, result.stderr
    assert "sk-very-secret" not in result.stdout
    assert "db-password" not in result.stdout
    effective = tomllib.loads(result.stdout)
    assert effective["database_url"] == "postgresql+asyncpg://genai:**********@db:5432/genai"
    remote, local = effective["inference"]["chat_models"]["assistant"]
    assert remote["api_key"] == "**********"
    assert (remote["timeout"], local["kind"]) == (30.0, "local")
    assert effective["inference"]["local_chat"]["n_ctx"] == 4096
    assert effective["inference"]["local_chat"]["n_seq_max"] == 2
    assert effective["retrieval"]["k"] == 5
    # Each value that is not a default says where it came from.
    assert f"n_ctx = 4096  # {path}:13\n" in result.stdout
    assert "n_seq_max = 2  # environment variable GENAI_INFERENCE__LOCAL_CHAT__N_SEQ_MAX\n" in (
        result.stdout
    )
    assert f"assistant = [  # {path}:7\n" in result.stdout


def test_check_reports_every_problem_with_its_location(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "service.toml"
    path.write_text(BAD)
    monkeypatch.delenv("NOT_SET_KEY", raising=False)
    monkeypatch.setenv("GENAI_HTTP__MAX_BODY_BYTES", "-5")
    result = runner.invoke(app, ["config", "check", "--file", str(path)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: {path}:1: unknown setting log_levl",
        f"error: {path}:5: inference.chat_models.assistant[0].api_key refers to the environment "
        "variable NOT_SET_KEY, which is not set",
        "error: environment variable GENAI_HTTP__MAX_BODY_BYTES: http.max_body_bytes: "
        "Input should be greater than 0",
        f"error: {path}:6: inference.chat_models.assistant[1].timeout: "
        "Input should be greater than 0",
        f"error: {path}:7: inference.chat_models.assistant[2].kind: "
        "Input should be 'local' or 'openai_compatible'",
        f"error: {path}:11: inference.local_chat.n_ctx: "
        "Input should be greater than or equal to 256",
        f"error: {path}:13: documents: Value error, documents.chunk_overlap must be smaller "
        "than documents.chunk_tokens",
        "7 problem(s) in the configuration",
    ]


def test_check_reports_a_default_model_that_is_not_configured(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "service.toml"
    path.write_text(
        '[inference]\ndefault_chat_model = "asistant"\n\n'
        '[inference.chat_models]\nassistant = [{ kind = "local" }]\n'
    )
    result = runner.invoke(app, ["config", "check", "--file", str(path)])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"error: {path}:2: inference.default_chat_model: the default chat model 'asistant' "
        "is not configured (known: assistant)"
    )
    monkeypatch.setenv("GENAI_INFERENCE__DEFAULT_EMBEDDING_MODEL", "nothing")
    result = runner.invoke(app, ["config", "check"])
    assert result.stderr.splitlines()[0] == (
        "error: environment variable GENAI_INFERENCE__DEFAULT_EMBEDDING_MODEL: "
        "inference.default_embedding_model: the default embedding model 'nothing' is not "
        "configured (known: all-minilm-l6-v2)"
    )


def test_check_reads_genai_config_and_reports_settings_without_a_location(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "production.toml"
    path.write_text('env = "production"\n')
    monkeypatch.setenv("GENAI_CONFIG", str(path))
    result = runner.invoke(app, ["config", "check"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0].startswith(
        "error: settings: secret_key: GENAI_SECRET_KEY must be set in production"
    )


def test_other_commands_stop_on_a_broken_configuration(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "genai-service.toml").write_text("[http]\nmax_body_bytes = 0\n")
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: genai-service.toml:2: http.max_body_bytes: Input should be greater than 0",
        "1 problem(s) in the configuration",
    ]
    assert not (tmp_path / "data").exists()


def uncommented(example: str) -> str:
    """The example with every setting line and table header taken out of its comment."""
    return re.sub(r"^#(?=[\[\w\"])(?!.* =$)", "", example, flags=re.M)


def written_keys(example: str) -> set[str]:
    """Dotted names of every setting line of the example, unset ones (`#key =`) included."""
    keys: set[str] = set()
    table = ""
    for line in example.splitlines():
        if header := re.fullmatch(r"#?\[([\w.]+)\]", line):
            table = header[1] + "."
        elif assignment := re.fullmatch(r"#?([\w\"-]+) =.*", line):
            keys.add(table + assignment[1])
    return keys


def model_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        nested = section_model(field.annotation)
        if nested is not None:
            keys |= model_keys(nested, f"{prefix}{name}.")
        elif provider_map_item(field.annotation) is None:
            keys.add(prefix + name)
    return keys


def descriptions(model: type[BaseModel]) -> dict[str, str | None]:
    """Each field's docstring; a section's own docstring where its field has none."""
    found: dict[str, str | None] = {}
    for name, field in model.model_fields.items():
        section = section_model(field.annotation)
        found[f"{model.__name__}.{name}"] = field.description or (section and section.__doc__)
        nested = section or provider_map_item(field.annotation)
        if nested is not None:
            found |= descriptions(nested)
    return found


def test_every_setting_has_a_docstring() -> None:
    assert [name for name, text in descriptions(Settings).items() if not text] == []


def test_the_example_has_every_setting_its_default_and_its_docstring(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["config", "example"])
    assert result.exit_code == 0
    example = result.stdout
    assert tomllib.loads(example)  # as printed: only (empty) tables are active
    assert written_keys(example) >= model_keys(Settings)
    for text in descriptions(Settings).values():
        first_line = (text or "").splitlines()[0]
        assert f"# {first_line}" in example or f": {first_line}" in example
    # Uncommented, it is a valid file holding exactly the defaults.
    path = tmp_path / "example.toml"
    path.write_text(uncommented(example))
    config = ConfigFile.read(path, Settings, environ={})
    assert config.problems == []
    with config.in_use():
        from_example = Settings(_env_file=None)
    assert from_example.model_dump() == Settings.model_construct().model_dump()
    assert "smollm2-135m-instruct" in config.data["inference"]["chat_models"]
