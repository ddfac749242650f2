"""The OpenAI-compatible surface: chat completions, legacy completions, responses, embeddings
and models, under `/v1`."""
