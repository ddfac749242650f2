"""Opaque secrets: generation and the digest they are stored and looked up by."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_BYTES = 32


def new_opaque_token(prefix: str = "") -> str:
    """A random, URL-safe secret (256 bits), optionally after a recognisable prefix."""
    return prefix + secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> str:
    """The SHA-256 hex digest a high-entropy token is stored under.

    A fast hash is enough here: the tokens are random, so there is nothing to guess, and a
    deterministic digest lets the database find a presented token by an indexed equality lookup.
    Passwords are different: they go through argon2 (`auth.passwords`).
    """
    return hashlib.sha256(token.encode()).hexdigest()
