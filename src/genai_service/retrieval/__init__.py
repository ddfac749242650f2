"""Retrieval: finding the passages of a user's documents that answer a question."""
