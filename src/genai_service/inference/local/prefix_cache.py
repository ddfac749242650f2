"""Reusing the KV cache of a shared prompt prefix: which slot a new request goes to.

A slot keeps the KV cache of its last sequence after that sequence leaves, with the tokens it
holds. A new prompt that starts with the same tokens (the next turn of a conversation: the whole
history again, plus the question) goes to that slot and prefills only what differs. A prompt
that shares its start with a sequence still running (the `n` choices of one request, or
identical requests at once) takes another slot and copies that sequence's KV cache into it
once the shared part is computed, instead of computing it again.

Without a match, a request takes the lowest slot that holds nothing, else the slot used least
recently: slots that hold the newest conversations are kept longest.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

MIN_REUSE_TOKENS = 16
"""Shorter shared prefixes are computed again: not worth tying a request to a slot."""


def common_prefix(first: Sequence[int], second: Sequence[int]) -> int:
    """How many tokens the two sequences share from their start."""
    count = 0
    for a, b in zip(first, second, strict=False):
        if a != b:
            break
        count += 1
    return count


@dataclass(frozen=True, slots=True)
class Placement:
    slot: int
    reuse: int
    """Prompt tokens whose KV cache is (or will be, once copied) in `slot` already."""
    copy_from: int | None = None
    """A running sequence's slot to copy the shared prefix from, once it has computed it."""


class PrefixCache:
    """Engine-thread bookkeeping of the tokens in each slot's KV cache, and slot choice."""

    def __init__(self, slots: int, *, enabled: bool = True) -> None:
        self._enabled = enabled
        self._held: dict[int, list[int]] = {slot: [] for slot in range(slots)}
        self._clock = itertools.count(1)
        self._last_used: dict[int, int] = dict.fromkeys(range(slots), 0)

    def held(self, slot: int) -> list[int]:
        return self._held[slot]

    def hold(self, slot: int, tokens: Sequence[int]) -> None:
        """`slot`'s KV cache now holds exactly `tokens` (from position 0)."""
        self._held[slot] = list(tokens) if self._enabled else []
        self._last_used[slot] = next(self._clock)

    def forget(self, slot: int) -> None:
        self._held[slot] = []

    def place(
        self, prompt: Sequence[int], free: Collection[int], running: Mapping[int, Sequence[int]]
    ) -> Placement:
        """Where a request with `prompt` goes, among the `free` slots; `running` maps the slots
        of running sequences to their prompts.

        At least one prompt token is always left to compute: the first reply token is sampled
        from its logits.
        """
        if not self._enabled:
            return Placement(min(free), 0)
        limit = len(prompt) - 1
        best_free, best_free_length = None, 0
        for slot in sorted(free):
            length = min(common_prefix(self._held[slot], prompt), limit)
            if length > best_free_length:
                best_free, best_free_length = slot, length
        best_running, best_running_length = None, 0
        for slot in sorted(running):
            length = min(common_prefix(running[slot], prompt), limit)
            if length > best_running_length:
                best_running, best_running_length = slot, length
        if best_free is not None and best_free_length >= max(MIN_REUSE_TOKENS, best_running_length):
            return Placement(best_free, best_free_length)
        slot = self._vacant(free)
        if best_running is not None and best_running_length >= MIN_REUSE_TOKENS:
            return Placement(slot, best_running_length, copy_from=best_running)
        return Placement(slot, 0)

    def _vacant(self, free: Collection[int]) -> int:
        empty = [slot for slot in free if not self._held[slot]]
        if empty:
            return min(empty)
        return min(free, key=lambda slot: (self._last_used[slot], slot))
