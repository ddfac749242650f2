"""Embedding models: the embedded sentence-transformers model (micro-batched) and remote ones."""

from genai_service.inference.embeddings.batching import MicroBatcher
from genai_service.inference.embeddings.local import LocalEmbeddingModel, default_model_path
from genai_service.inference.embeddings.remote import RemoteEmbeddingModel

__all__ = ["LocalEmbeddingModel", "MicroBatcher", "RemoteEmbeddingModel", "default_model_path"]
