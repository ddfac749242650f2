"""Chat messages to prompt tokens, usable from any thread.

It loads the GGUF a second time with `vocab_only` (the vocabulary and metadata, no weights;
a fraction of a second), so counting tokens never waits behind decode steps on the engine
thread and never touches the engine's model. A lock serialises calls: llama.cpp does not
document its tokenizer as thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from genai_service.inference.base import ChatMessage, ModelNotReady
from genai_service.inference.local.chat_template import ChatTemplate
from genai_service.inference.local.native import free_model, load_model
from genai_service.inference.local.vocabulary import Vocabulary


class PromptTokenizer:
    def __init__(self, model_path: Path) -> None:
        self._model = load_model(model_path, vocab_only=True)
        self._vocabulary = Vocabulary(self._model)
        self._template = ChatTemplate.from_model(self._model, self._vocabulary)
        self._lock = threading.Lock()
        self._closed = False

    @property
    def vocabulary_size(self) -> int:
        return self._vocabulary.size

    @property
    def renders_tool_role(self) -> bool:
        return self._template.renders_tool_role

    def tokens_for(self, messages: Sequence[ChatMessage]) -> list[int]:
        return self.tokens_of(self._template.render(messages))

    def tokens_of(self, prompt: str) -> list[int]:
        """The tokens of a prompt as it is (special tokens in it are read as such)."""
        with self._lock:
            if self._closed:
                raise ModelNotReady("the local chat model is shut down")
            tokens = self._vocabulary.tokenize(prompt)
        return tokens or [self._vocabulary.bos]

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                free_model(self._model)
