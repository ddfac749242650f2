"""The thread tuner keeps the count whose decode steps are fastest, finds a better one within a
few dozen steps when the machine changes, and on a steady machine spends few steps trying."""

from __future__ import annotations

from collections.abc import Callable

from genai_service.inference.local.thread_tuner import (
    LONGEST_INTERVAL,
    ThreadTuner,
    thread_choices,
)

Cost = Callable[[int, int], float]
"""Seconds a step of `tokens` tokens takes with `threads` threads."""


def quiet(threads: int, tokens: int) -> float:
    """Two cores free: two threads nearly halve a step."""
    return (0.010 + 0.001 * tokens) / (1.8 if threads == 2 else 1.0)


def busy(threads: int, tokens: int) -> float:
    """Another process holds a core: two threads wait for each other."""
    return (0.010 + 0.001 * tokens) * (8.0 if threads == 2 else 1.0)


def run(tuner: ThreadTuner, cost: Cost, steps: int, tokens: int = 8) -> list[int]:
    """The thread count of each step."""
    used: list[int] = []
    for _ in range(steps):
        threads = tuner.threads
        used.append(threads)
        tuner.observe(tokens, cost(threads, tokens))
    return used


def test_the_counts_tried_are_all_cores_one_fewer_and_half() -> None:
    assert thread_choices(1) == [1]
    assert thread_choices(2) == [1, 2]
    assert thread_choices(16) == [8, 15, 16]


def test_on_a_quiet_machine_every_core_is_kept() -> None:
    tuner = ThreadTuner([1, 2])
    used = run(tuner, quiet, 5000)
    assert tuner.current == 2
    assert used.count(1) / len(used) < 0.02


def test_on_a_busy_machine_fewer_threads_are_found_within_a_few_steps() -> None:
    tuner = ThreadTuner([1, 2])
    used = run(tuner, busy, 5000)
    assert tuner.current == 1
    assert 1 in used[:12]
    assert used.count(2) / len(used) < 0.02


def test_the_choice_follows_the_machine_as_it_changes() -> None:
    tuner = ThreadTuner([1, 2])
    run(tuner, quiet, 3000)
    assert tuner.current == 2
    busy_steps = run(tuner, busy, 3000)
    assert tuner.current == 1
    assert busy_steps.index(1) <= LONGEST_INTERVAL
    run(tuner, quiet, 3 * LONGEST_INTERVAL)
    assert tuner.current == 2


def test_steps_are_compared_only_with_steps_of_their_size() -> None:
    """Trial steps of a size the current count has not decoded lately are no evidence: a
    trial that sees only prompt chunks ends unjudged, and the count stays."""
    tuner = ThreadTuner([1, 2])
    while tuner.threads == 2:  # generating steps, until the first trial
        tuner.observe(8, quiet(2, 8))
    for _ in range(16):
        assert tuner.threads == 1
        tuner.observe(512, 0.001)  # would look far faster, were it comparable
    assert (tuner.current, tuner.threads) == (2, 2)


def test_a_pinned_count_is_never_changed() -> None:
    tuner = ThreadTuner([3])
    assert set(run(tuner, busy, 2000)) == {3}
