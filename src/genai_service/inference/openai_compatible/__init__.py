"""Any OpenAI-compatible server (OpenAI, vLLM, Ollama, another genai-service) as a provider.

`endpoint`: the HTTP session, its lifecycle and retries (shared with remote embeddings);
`upstream_errors`: the server's failures as our errors; `event_data`: the events of a streamed
reply; `replies`: a reply read as the OpenAI SDK's types; `request_body`: what a request
becomes upstream; `reply_pieces`: what comes back, as ours; `chat_model`: the chat adapter on
top.
"""
