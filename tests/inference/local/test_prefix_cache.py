"""Slot choice for prompt prefixes (no model needed): always the lowest free slot, a held prefix
reused in place or copied into it, a running sequence's copied once computed, and what the slot
held moved where it keeps the newest caches longest."""

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


def test_a_prompt_extending_the_one_the_lowest_free_slot_holds_reuses_it_in_place() -> None:
    cache = PrefixCache(4)
    cache.hold(1, LONG)
    placement = cache.place([*LONG, 7, 8], free={1, 2, 3}, running={0: [5] * 40})
    assert placement == Placement(slot=1, reuse=len(LONG))


def test_a_prompt_sharing_only_the_start_of_what_the_slot_holds_keeps_the_rest_elsewhere() -> None:
    cache = PrefixCache(3)
    cache.hold(0, [*LONG, *range(40)])  # a conversation, of which the prompt shares LONG
    placement = cache.place([*LONG, 9, 9], free={0, 1, 2}, running={})
    assert placement == Placement(slot=0, reuse=len(LONG), move_held_to=1)
    # A next turn extends all of what the slot holds: nothing to keep.
    cache.hold(0, LONG)
    assert cache.place([*LONG, 9, 9], free={0, 1, 2}, running={}).move_held_to is None


def test_a_prefix_held_in_another_slot_is_copied_into_the_lowest_free_one() -> None:
    cache = PrefixCache(4)
    cache.hold(2, LONG)
    placement = cache.place([*LONG, 7, 8], free={0, 1, 2, 3}, running={})
    assert placement == Placement(slot=0, reuse=len(LONG), copy_held_from=2)


def test_at_least_one_prompt_token_is_left_to_compute() -> None:
    cache = PrefixCache(2)
    cache.hold(0, LONG)
    assert cache.place(LONG, free={0, 1}, running={}) == Placement(0, len(LONG) - 1)


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


def test_what_the_lowest_free_slot_held_moves_to_an_empty_slot() -> None:
    cache = PrefixCache(3)
    cache.hold(0, [1] * 40)
    cache.hold(2, [2] * 40)
    placement = cache.place([3] * 40, free={0, 1, 2}, running={})
    assert placement == Placement(slot=0, reuse=0, move_held_to=1)


def test_else_to_the_slot_used_least_recently_if_that_one_is_older() -> None:
    cache = PrefixCache(3)
    cache.hold(1, [1] * 40)  # the oldest
    cache.hold(2, [2] * 40)
    cache.hold(0, [4] * 40)  # the newest
    assert cache.place([3] * 40, free={0, 1, 2}, running={}).move_held_to == 1
    cache = PrefixCache(3)
    cache.hold(0, [4] * 40)  # the oldest: dropped
    cache.hold(1, [1] * 40)
    cache.hold(2, [2] * 40)
    assert cache.place([3] * 40, free={0, 1, 2}, running={}).move_held_to is None


def test_a_copied_prefix_is_not_overwritten_by_the_move() -> None:
    cache = PrefixCache(3)
    cache.hold(2, [2] * 40)  # the oldest, but holds nothing wanted
    cache.hold(1, LONG)  # older than slot 0's, but the prefix wanted
    cache.hold(0, [4] * 40)
    placement = cache.place([*LONG, 9], free={0, 1, 2}, running={})
    assert placement == Placement(0, len(LONG), copy_held_from=1, move_held_to=2)


def test_a_move_carries_the_tokens_and_their_age() -> None:
    cache = PrefixCache(3)
    cache.hold(1, [1] * 40)
    cache.hold(0, LONG)
    cache.move(0, 2)
    assert cache.held(2) == LONG
    assert cache.held(0) == []
    # Slot 2's cache is newer than slot 1's: the next cache moved out of slot 0 evicts slot 1's.
    cache.hold(0, [4] * 40)
    assert cache.place([3] * 40, free={0, 1, 2}, running={}).move_held_to == 1


def test_when_off_the_lowest_slot_and_no_reuse() -> None:
    cache = PrefixCache(3, enabled=False)
    cache.hold(2, LONG)
    assert cache.place([*LONG, 1], free={1, 2}, running={0: LONG}) == Placement(1, 0)
