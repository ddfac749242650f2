"""A genai-service process with a slow scripted chat model and the fake embedding model, for
tests that need real server processes (several on one database; one killed mid-call).

    python -m tests.guards.fake_model_server --port 8123

Settings come from the environment, as for `genai-service serve`. The chat model streams
`REPLY_WORDS` words (one token each) `CHUNK_DELAY` seconds apart, cut at `max_tokens`;
`FAILING_CHAT_MODEL` fails part-way.
"""

from __future__ import annotations

import argparse

import uvicorn

from genai_service.app import create_app
from genai_service.inference.registry import ModelRegistry
from genai_service.kit.errors import BadGateway
from genai_service.serving import server_options
from tests.conftest import FAKE_CHAT_MODEL, FAKE_EMBEDDING_MODEL
from tests.fakes import FailingChatModel, FakeEmbeddingModel, ScriptedChatModel

REPLY_WORDS = 200
CHUNK_DELAY = 0.02
FAILING_CHAT_MODEL = "fake-failing"
"""Sends `FAILING_AFTER` words of its reply, then fails as an upstream that closed would."""
FAILING_AFTER = 3


def fake_models() -> ModelRegistry:
    return ModelRegistry(
        chat={
            FAKE_CHAT_MODEL: ScriptedChatModel(
                reply=" ".join(["word"] * REPLY_WORDS), chunk_delay=CHUNK_DELAY
            ),
            FAILING_CHAT_MODEL: FailingChatModel(
                BadGateway("the upstream closed the connection"), after_chunks=FAILING_AFTER
            ),
        },
        embeddings={FAKE_EMBEDDING_MODEL: FakeEmbeddingModel()},
        default_chat=FAKE_CHAT_MODEL,
        default_embedding=FAKE_EMBEDDING_MODEL,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    app = create_app(models=fake_models())
    uvicorn.run(app, host="127.0.0.1", port=port, **server_options())


if __name__ == "__main__":
    main()
