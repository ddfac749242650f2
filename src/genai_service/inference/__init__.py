"""Providers for generation and embeddings, behind small protocols."""
