"""Liveness, readiness and the root health endpoint."""
