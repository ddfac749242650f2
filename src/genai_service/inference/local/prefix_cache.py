"""Reusing the KV cache of a shared prompt prefix: which slot a new request goes to.

A slot keeps the KV cache of its last sequence after that sequence leaves, with the tokens it
holds. A new prompt that starts with the same tokens (the next turn of a conversation: the whole
history again, plus the question) prefills only what differs. A prompt that shares its start
with a sequence still running (the `n` choices of one request, or identical requests at once)
copies that sequence's KV cache once the shared part is computed, instead of computing it again.

Every request decodes in the lowest free slot, so that the running sequences keep to a compact
range of slots: llama.cpp computes a decode step once per run of consecutive slots (see
`decode_context`), and a step of four sequences in four runs takes about 1.6 times as long as in
one. A held prefix in another slot is copied into it. What the lowest free slot held itself, if
the request does not reuse all of it, is first moved to the free slot used least recently (one
that holds nothing, if there is one), so the caches of the newest conversations are kept
longest, as if each had stayed where it was.
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


def _longest_match(
    slots: Mapping[int, Sequence[int]], prompt: Sequence[int], limit: int
) -> tuple[int | None, int]:
    """The slot whose tokens share the longest start with `prompt` (the lowest of equals), and
    how many tokens, at most `limit`; `(None, 0)` when none shares any."""
    best, best_length = None, 0
    for slot in sorted(slots):
        length = min(common_prefix(slots[slot], prompt), limit)
        if length > best_length:
            best, best_length = slot, length
    return best, best_length


@dataclass(frozen=True, slots=True)
class Placement:
    slot: int
    reuse: int
    """Prompt tokens whose KV cache is (or will be, once copied) in `slot` already."""
    copy_from: int | None = None
    """A running sequence's slot to copy the shared prefix from, once it has computed it."""
    copy_held_from: int | None = None
    """A free slot holding the shared prefix, copied into `slot` at once."""
    move_held_to: int | None = None
    """A free slot that takes what `slot` held, before anything is copied into `slot`."""


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
        slot = min(free)
        if not self._enabled:
            return Placement(slot, 0)
        limit = len(prompt) - 1
        held = {candidate: self._held[candidate] for candidate in free}
        best_free, best_free_length = _longest_match(held, prompt, limit)
        best_running, best_running_length = _longest_match(running, prompt, limit)
        reusable = best_free is not None and best_free_length >= max(
            MIN_REUSE_TOKENS, best_running_length
        )
        in_place = reusable and best_free == slot
        # What the slot holds beyond what this request reuses of it is kept elsewhere if it is
        # worth it: the rest of a conversation whose start this request shares, say.
        lost = len(self._held[slot]) - (best_free_length if in_place else 0)
        spares = [other for other in free if other != best_free]
        move_to = self._spare(slot, spares) if lost >= MIN_REUSE_TOKENS else None
        if in_place:
            return Placement(slot, best_free_length, move_held_to=move_to)
        if reusable:
            return Placement(slot, best_free_length, copy_held_from=best_free, move_held_to=move_to)
        if best_running is not None and best_running_length >= MIN_REUSE_TOKENS:
            return Placement(
                slot, best_running_length, copy_from=best_running, move_held_to=move_to
            )
        return Placement(slot, 0, move_held_to=move_to)

    def move(self, source: int, target: int) -> None:
        """`target` now holds what `source` held, as recently used; `source` holds nothing."""
        self._held[target] = self._held[source]
        self._last_used[target] = self._last_used[source]
        self._held[source] = []

    def _spare(self, slot: int, free: Collection[int]) -> int | None:
        """The free slot that takes what `slot` holds: the one other than `slot` whose cache is
        worth least (one that holds nothing, else the one used least recently), if it is worth
        less than `slot`'s own; `None` when `slot`'s cache is worth least."""
        others = [other for other in free if other != slot]
        if not others:
            return None
        spare = min(others, key=lambda other: (bool(self._held[other]), self._last_used[other]))
        if self._held[spare] and self._last_used[spare] > self._last_used[slot]:
            return None
        return spare
