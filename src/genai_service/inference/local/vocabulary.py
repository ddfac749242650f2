"""Token ids to text and back, with the vocabulary of a loaded GGUF model."""

from __future__ import annotations

import ctypes

import llama_cpp

from genai_service.inference.base import ProviderError

_PIECE_BUFFER = 64


class Vocabulary:
    """A model's vocabulary. Not locked: callers share one instance from one thread at a time."""

    def __init__(self, model: llama_cpp.llama_model_p) -> None:
        vocab: llama_cpp.llama_vocab_p | None = llama_cpp.llama_model_get_vocab(model)
        if vocab is None:
            raise ProviderError("the model file has no vocabulary")
        self._vocab = vocab
        self._piece = ctypes.create_string_buffer(_PIECE_BUFFER)
        self.size: int = llama_cpp.llama_vocab_n_tokens(vocab)
        """Tokens in the vocabulary: valid ids are `0 .. size - 1`."""

    @property
    def handle(self) -> llama_cpp.llama_vocab_p:
        """The native vocabulary, for llama.cpp calls that take one (grammars)."""
        return self._vocab

    @property
    def bos(self) -> int:
        token: int = llama_cpp.llama_vocab_bos(self._vocab)
        return token

    @property
    def eos(self) -> int:
        token: int = llama_cpp.llama_vocab_eos(self._vocab)
        return token

    def tokenize(self, text: str) -> list[int]:
        """Tokens of an already formatted prompt: special tokens in the text are parsed, none added.

        The chat template writes BOS and role markers itself.
        """
        data = text.encode("utf-8")
        capacity = len(data) + 2
        while True:
            tokens = (llama_cpp.llama_token * capacity)()
            n: int = llama_cpp.llama_tokenize(
                self._vocab, data, len(data), tokens, capacity, False, True
            )
            if n >= 0:
                return list(tokens[:n])
            capacity = -n

    def piece(self, token: int) -> bytes:
        """The bytes of one token, maybe part of a UTF-8 character; b"" for control tokens."""
        n: int = llama_cpp.llama_token_to_piece(
            self._vocab, token, self._piece, _PIECE_BUFFER, 0, False
        )
        if n >= 0:
            return self._piece.raw[:n]
        larger = ctypes.create_string_buffer(-n)
        n = llama_cpp.llama_token_to_piece(self._vocab, token, larger, -n, 0, False)
        return larger.raw[:n]

    def text_of(self, token: int) -> str:
        """The token as written in the vocabulary, e.g. `<|im_end|>`."""
        raw: bytes | None = llama_cpp.llama_vocab_get_text(self._vocab, token)
        return (raw or b"").decode("utf-8", errors="replace")

    def is_end_of_generation(self, token: int) -> bool:
        result: bool = llama_cpp.llama_vocab_is_eog(self._vocab, token)
        return result
