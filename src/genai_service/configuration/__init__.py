"""The configuration file (`genai-service.toml`): reading it, checking it, printing an example."""
