"""The scale-out topology of docs/deployment.md as test settings: a web worker whose chat and
embedding models are on a model host (llama.cpp's own OpenAI-compatible server)."""

from __future__ import annotations

import json

from tests.llama_cpp_server import CONTEXT_TOKENS, MODEL_ALIAS, LlamaCppServer

CHAT_MODEL = "smollm2"
EMBEDDING_MODEL = "smollm2-embeddings"


def web_worker_environment(model_host: LlamaCppServer, database_url: str) -> dict[str, str]:
    """What a web worker of this topology is configured with."""
    remote = {
        "kind": "openai_compatible",
        "base_url": model_host.base_url,
        "model": MODEL_ALIAS,
        "context_window": CONTEXT_TOKENS,
    }
    return {
        "GENAI_DATABASE_URL": database_url,
        "GENAI_INFERENCE__CHAT_MODELS": json.dumps({CHAT_MODEL: [remote]}),
        "GENAI_INFERENCE__EMBEDDING_MODELS": json.dumps({EMBEDDING_MODEL: [remote]}),
        "GENAI_INFERENCE__DEFAULT_CHAT_MODEL": CHAT_MODEL,
        "GENAI_INFERENCE__DEFAULT_EMBEDDING_MODEL": EMBEDDING_MODEL,
    }
