"""The embedded llama.cpp engine: one thread owns the model and runs continuous batching."""
