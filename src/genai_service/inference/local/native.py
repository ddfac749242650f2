"""Process-wide llama.cpp setup: backend initialisation, log routing, and loading GGUF files."""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

import llama_cpp
from loguru import logger

from genai_service.inference.base import ProviderError

# ggml_log_level: 1 debug, 2 info, 3 warn, 4 error, 5 "continued" (progress dots).
_FORWARDED_LEVELS = {2: "DEBUG", 3: "DEBUG", 4: "WARNING"}

_setup_lock = threading.Lock()
_initialised = False


def _log_to_loguru(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    """llama.cpp prints thousands of lines per model load to stderr; keep the useful ones quiet.

    Errors become warnings, info and warnings become debug; its debug output is dropped.
    """
    if level not in _FORWARDED_LEVELS:
        return
    message = text.decode("utf-8", errors="replace").rstrip("\n")
    if message.strip(" ."):
        logger.log(_FORWARDED_LEVELS[level], "llama.cpp: {}", message)


# Kept referenced for the life of the process: llama.cpp calls it from native code.
_LOG_CALLBACK = llama_cpp.llama_log_callback(_log_to_loguru)


def initialise_llama() -> None:
    """Route llama.cpp's logging to loguru and initialise its backend, once per process."""
    global _initialised
    with _setup_lock:
        if _initialised:
            return
        llama_cpp.llama_log_set(_LOG_CALLBACK, ctypes.c_void_p(0))
        llama_cpp.llama_backend_init()
        _initialised = True


def load_model(path: Path, *, vocab_only: bool = False) -> llama_cpp.llama_model_p:
    """Load a GGUF file on the calling thread; `vocab_only` skips the weights (tokenizer only).

    The weights stay in plain CPU buffers: llama.cpp's extra buffer types repack them for AMX
    tiles where the CPU reports AMX, and on virtual machines that report it without supporting
    it every matrix product then faults (a segfault in `ggml_backend_amx_mul_mat`).
    """
    initialise_llama()
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = vocab_only
    params.use_extra_bufts = False
    model: llama_cpp.llama_model_p | None = llama_cpp.llama_model_load_from_file(
        str(path).encode(), params
    )
    if model is None:
        raise ProviderError(f"llama.cpp could not load the model file {path.name}")
    return model


def free_model(model: llama_cpp.llama_model_p) -> None:
    llama_cpp.llama_model_free(model)
