"""Settings from genai-service.toml: where it is found, precedence, env: references, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from genai_service.configuration.config_file import ConfigFile
from genai_service.configuration.problems import ConfigError
from genai_service.settings import Settings

REMOTE_WITH_FALLBACK = """\
log_level = "DEBUG"

[inference]
default_chat_model = "assistant"

[inference.chat_models]
assistant = [
  { kind = "openai_compatible", base_url = "http://vllm/v1", model = "Qwen/Qwen2.5", timeout = 30 },
  { kind = "local" },
]

[inference.local_chat]
n_ctx = 4096
n_seq_max = 2
"""


def write(tmp_path: Path, text: str, name: str = "genai-service.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load(monkeypatch: pytest.MonkeyPatch, path: Path) -> Settings:
    monkeypatch.setenv("GENAI_CONFIG", str(path))
    return Settings(_env_file=None)


def test_models_fallbacks_and_limits_come_from_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load(monkeypatch, write(tmp_path, REMOTE_WITH_FALLBACK))
    assert settings.log_level == "DEBUG"
    assert settings.inference.default_chat_model == "assistant"
    remote, local = settings.inference.chat_models["assistant"]
    assert (remote.kind, remote.base_url, remote.model, remote.timeout) == (
        "openai_compatible",
        "http://vllm/v1",
        "Qwen/Qwen2.5",
        30.0,
    )
    assert local.kind == "local"
    assert (settings.inference.local_chat.n_ctx, settings.inference.local_chat.n_seq_max) == (
        4096,
        2,
    )
    # Sections the file leaves out keep their defaults.
    assert settings.inference.local_chat.max_queue == 64
    assert settings.documents.chunk_tokens == 200


def test_the_file_in_the_working_directory_is_read_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, 'name = "from-the-working-directory"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GENAI_CONFIG")
    assert Settings(_env_file=None).name == "from-the-working-directory"


def test_without_a_file_the_defaults_apply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GENAI_CONFIG")
    assert Settings(_env_file=None).model_dump() == Settings.model_construct().model_dump()


def test_a_named_file_that_is_missing_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError) as raised:
        load(monkeypatch, tmp_path / "nowhere.toml")
    assert str(raised.value) == f"{tmp_path / 'nowhere.toml'}: no such file"


def test_environment_variables_override_the_file_key_by_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENAI_INFERENCE__LOCAL_CHAT__N_CTX", "1024")
    monkeypatch.setenv("GENAI_LOG_LEVEL", "WARNING")
    monkeypatch.setenv(
        "GENAI_INFERENCE__CHAT_MODELS",
        '{"assistant": [{"kind": "local"}], "extra": [{"kind": "local"}]}',
    )
    settings = load(monkeypatch, write(tmp_path, REMOTE_WITH_FALLBACK))
    assert settings.log_level == "WARNING"
    assert settings.inference.local_chat.n_ctx == 1024
    assert settings.inference.local_chat.n_seq_max == 2  # from the file
    assert settings.inference.default_chat_model == "assistant"  # from the file
    # A model map from the environment is merged with the file's; its chains win.
    assert [p.kind for p in settings.inference.chat_models["assistant"]] == ["local"]
    assert set(settings.inference.chat_models) == {"assistant", "extra"}


def test_values_given_in_code_override_the_file_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENAI_CONFIG", str(write(tmp_path, 'name = "file"\nlog_level = "DEBUG"\n')))
    monkeypatch.setenv("GENAI_NAME", "environment")
    settings = Settings(_env_file=None, log_level="ERROR")
    assert (settings.name, settings.log_level) == ("environment", "ERROR")


def test_env_references_are_resolved_when_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLLM_API_KEY", "sk-from-the-environment")
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://genai:pw@db/genai")
    text = """\
database_url = "env:DATABASE_URL"

[inference.chat_models]
assistant = [{ kind = "openai_compatible", base_url = "http://x/v1", api_key = "env:VLLM_API_KEY" }]

[vectors]
collection = "env: not a reference, kept as written"
"""
    settings = load(monkeypatch, write(tmp_path, text))
    api_key = settings.inference.chat_models["assistant"][0].api_key
    assert api_key is not None
    assert api_key.get_secret_value() == "sk-from-the-environment"
    assert settings.database_url == "postgresql+asyncpg://genai:pw@db/genai"
    assert settings.vectors.collection == "env: not a reference, kept as written"


def test_a_missing_env_reference_names_the_variable_and_the_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    text = """\
[inference.chat_models]
assistant = [
  { kind = "local" },
  { kind = "openai_compatible", base_url = "http://x/v1", api_key = "env:NOT_SET_ANYWHERE" },
]
"""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load(monkeypatch, path)
    assert str(raised.value) == (
        f"{path}:4: inference.chat_models.assistant[1].api_key refers to the environment "
        "variable NOT_SET_ANYWHERE, which is not set"
    )


def test_an_unknown_key_is_an_error_at_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = """\
log_levl = "DEBUG"

[inference.local_chat]
n_ctx = 4096
n_ctxx = 8192

[inference.chat_models]
assistant = [{ kind = "local", timeuot = 3 }]
"""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load(monkeypatch, path)
    assert [str(problem) for problem in raised.value.problems] == [
        f"{path}:1: unknown setting log_levl",
        f"{path}:5: unknown setting inference.local_chat.n_ctxx",
        f"{path}:8: unknown setting inference.chat_models.assistant[0].timeuot",
    ]


def test_a_syntax_error_is_reported_at_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, 'name = "ok"\n\n[http\nmax_body_bytes = 1\n')
    with pytest.raises(ConfigError) as raised:
        load(monkeypatch, path)
    (problem,) = raised.value.problems
    assert problem.location == f"{path}:3"
    assert problem.message.startswith("not valid TOML: ")


def test_reading_collects_every_problem_and_keeps_the_rest(tmp_path: Path) -> None:
    text = 'name = "kept"\nunknown = 1\nsecret_key = "env:ALSO_MISSING"\n'
    config = ConfigFile.read(write(tmp_path, text), Settings, environ={})
    assert config.data == {"name": "kept"}
    assert [problem.location for problem in config.problems] == [
        f"{tmp_path / 'genai-service.toml'}:2",
        f"{tmp_path / 'genai-service.toml'}:3",
    ]
