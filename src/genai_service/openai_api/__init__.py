"""The OpenAI-compatible surface: `/v1/chat/completions`, `/v1/embeddings`, `/v1/models`."""
