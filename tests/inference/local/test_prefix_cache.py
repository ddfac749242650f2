"""Slot choice for prompt prefixes (no model needed): reuse in place, copy from a running
sequence, or the vacant slot that keeps the newest caches longest."""

from __future__ import annotations

from genai_service.inference.local.prefix_cache import (
    MIN_REUSE_TOKENS,
    Placement,
    PrefixCache,
    common_prefix,
)

LONG = list(range(100, 100 + 3 * MIN_REUSE_TOKENS))


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([1, 2], [1, 2, 3]) == 2
    assert common_prefix([], [1]) == 0


def test_a_prompt_extending_a_held_one_reuses_its_slot_in_place() -> None:
    cache = PrefixCache(4)
    cache.hold(2, LONG)
    placement = cache.place([*LONG, 7, 8], free={0, 1, 2, 3}, running={})
    assert placement == Placement(slot=2, reuse=len(LONG))


def test_at_least_one_prompt_token_is_left_to_compute() -> None:
    cache = PrefixCache(2)
    cache.hold(1, LONG)
    assert cache.place(LONG, free={0, 1}, running={}) == Placement(1, len(LONG) - 1)


def test_short_shared_prefixes_are_not_reused() -> None:
    cache = PrefixCache(2)
    cache.hold(1, LONG)
    prompt = [*LONG[: MIN_REUSE_TOKENS - 1], 1, 2, 3]
    assert cache.place(prompt, free={0, 1}, running={}) == Placement(0, 0)


def test_a_prompt_shared_with_a_running_sequence_is_copied_into_a_vacant_slot() -> None:
    cache = PrefixCache(4)
    placement = cache.place([*LONG, 9], free={1, 2, 3}, running={0: [*LONG, 5]})
    assert placement == Placement(slot=1, reuse=len(LONG), copy_from=0)


def test_a_longer_match_in_a_running_sequence_wins_over_a_free_slot() -> None:
    cache = PrefixCache(4)
    cache.hold(3, LONG[: 2 * MIN_REUSE_TOKENS])
    placement = cache.place([*LONG, 9], free={1, 2, 3}, running={0: [*LONG, 5]})
    assert placement == Placement(slot=1, reuse=len(LONG), copy_from=0)


def test_without_a_match_empty_slots_go_first_then_the_least_recently_used() -> None:
    cache = PrefixCache(3)
    cache.hold(0, [1] * 40)
    cache.hold(2, [2] * 40)
    assert cache.place([3] * 40, free={0, 1, 2}, running={}).slot == 1
    cache.hold(1, [4] * 40)
    assert cache.place([3] * 40, free={0, 1, 2}, running={}).slot == 0  # held longest ago


def test_when_off_the_lowest_slot_and_no_reuse() -> None:
    cache = PrefixCache(3, enabled=False)
    cache.hold(2, LONG)
    assert cache.place([*LONG, 1], free={1, 2}, running={0: LONG}) == Placement(1, 0)
