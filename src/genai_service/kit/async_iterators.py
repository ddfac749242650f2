"""Closing async iterators that may hold resources (a model's sequence slot, a subscription)."""

from __future__ import annotations

from collections.abc import AsyncIterator


async def close_iterator(iterator: AsyncIterator[object]) -> None:
    """Close `iterator` now if it can be closed (an async generator), rather than when it is
    garbage-collected: its `finally` blocks release what it holds."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()
