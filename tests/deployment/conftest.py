from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.llama_cpp_server import LlamaCppServer


@pytest.fixture(scope="module")
def model_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaCppServer]:
    """The model host of the topology: chat and pooled embeddings, in one llama.cpp server."""
    with LlamaCppServer(tmp_path_factory.mktemp("model-host"), embeddings=True) as host:
        yield host
