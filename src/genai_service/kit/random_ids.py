"""Ids that must be unique but need not be secret: a request's, a completion's, a reservation's.

They come from a generator of their own, seeded from the operating system when the process
starts and again in a forked child: as unique as `uuid.uuid4()`'s 122 random bits, at a
fraction of its cost on the hot path (it reads the OS's source for each id). Not the `random`
module's shared generator: whatever seeds that one (a test framework, a library fixing its
seed) would repeat the ids. Anything a caller must not guess — tokens, API keys, secrets —
comes from `secrets` instead (kit/security.py).
"""

from __future__ import annotations

import os
import random
import uuid

_generator = random.Random()  # noqa: S311  # nosec B311  # unique, not secret (see above)
os.register_at_fork(after_in_child=_generator.seed)


def random_uuid() -> uuid.UUID:
    """A version-4 UUID."""
    return uuid.UUID(int=_generator.getrandbits(128), version=4)


def random_hex() -> str:
    """32 random hex digits (128 bits), the length of `uuid.uuid4().hex`."""
    return f"{_generator.getrandbits(128):032x}"
