"""Ids that must be unique but need not be secret: a request's, a completion's, a reservation's.

They come from the `random` module's generator, seeded from the operating system when the
process starts (and again in a forked child, by `random` itself): as unique as `uuid.uuid4()`'s
122 random bits, at a fraction of its cost on the hot path (it reads the OS's source
for each id). Anything a caller must not guess — tokens, API keys, secrets — comes from
`secrets` instead (kit/security.py).
"""

from __future__ import annotations

import random
import uuid


def random_uuid() -> uuid.UUID:
    """A version-4 UUID."""
    bits = random.getrandbits(128)  # nosec B311  # unique, not secret (see above)
    return uuid.UUID(int=bits, version=4)


def random_hex() -> str:
    """A version-4 UUID as 32 hex digits, as `uuid.uuid4().hex` gives."""
    return random_uuid().hex
