"""Any OpenAI-compatible server (OpenAI, vLLM, Ollama, another genai-service) as a provider.

`endpoint`: the SDK client, its lifecycle and error mapping (shared with remote embeddings);
`request_body`: what a request becomes upstream; `reply_pieces`: what comes back, as ours;
`chat_model`: the chat adapter on top.
"""
