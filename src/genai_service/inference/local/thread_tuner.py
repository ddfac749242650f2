"""How many threads llama.cpp decodes with, chosen from the decode steps themselves.

The best count depends on what else the machine runs, and that changes while the server runs.
On a quiet machine every core is fastest (each step reads the weights once, in parallel). When
another process holds a core, llama.cpp's threads, which wait for each other at every step,
spin until the one that lost its core gets it back, and a step can take ten times longer than
with fewer threads. No fixed setting is right in both cases, so the tuner measures: it decodes
with the fastest count it knows, and now and then tries a neighbouring count for a few steps.
A count that is faster by a clear margin on steps of the same size is kept; a trial that loses
makes the next one come later (up to a ceiling), so a steady machine pays little for trying.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Sequence

SAMPLES = 16
"""Recent step durations kept per step size, for the count in use."""
TRIAL_STEPS = 4
"""Comparable steps decoded with a candidate count before it is judged."""
LONGEST_TRIAL = 16
"""Steps after which a trial without enough comparable steps is dropped, unjudged."""
FIRST_INTERVAL = 256
"""Steps between trials after a switch; doubled after every trial that loses."""
LONGEST_INTERVAL = 8192
MARGIN = 0.1
"""A candidate must be this much faster (as a fraction) to replace the count in use."""
MIN_COMPARABLE = 3
"""Recent steps of a size the count in use needs before a trial step of that size is compared."""


def thread_choices(cores: int) -> list[int]:
    """Counts worth trying on `cores` cores: all of them, one fewer, and half."""
    return sorted({count for count in (cores, cores - 1, cores // 2) if count >= 1})


def step_size(tokens: int) -> int:
    """Steps are compared with steps of a similar number of tokens: a generating step and a
    prompt chunk of 512 tokens do not cost the same."""
    return max(tokens, 1).bit_length()


class ThreadTuner:
    """Owned by the engine thread: decode a step with `threads`, then `observe` it."""

    def __init__(self, choices: Sequence[int]) -> None:
        if not choices:
            raise ValueError("the thread tuner needs at least one thread count to choose from")
        self._choices = sorted(set(choices))
        self._current = self._choices[-1]
        self._recent: dict[int, deque[float]] = {}
        """Durations of recent steps with the current count, by step size."""
        self._interval = FIRST_INTERVAL
        self._until_trial = 2 * MIN_COMPARABLE
        """Steps with the current count before the next trial: the first comes soon, so a
        server that starts on a busy machine finds out within a few steps."""
        self._candidates: list[int] = []
        """Counts still to try in this round of trials, the one on trial last."""
        self._trial: list[tuple[int, float]] = []
        """Step size and duration of each step of the trial under way."""

    @property
    def current(self) -> int:
        """The count in use (not the one on trial)."""
        return self._current

    @property
    def threads(self) -> int:
        """The count to decode the next step with."""
        return self._candidates[-1] if self._candidates else self._current

    def observe(self, tokens: int, seconds: float) -> None:
        """The step decoded with `threads` threads had `tokens` tokens and took `seconds`."""
        size = step_size(tokens)
        if not self._candidates:
            self._recent.setdefault(size, deque(maxlen=SAMPLES)).append(seconds)
            self._until_trial -= 1
            if self._until_trial <= 0 and len(self._choices) > 1:
                self._candidates = self._neighbours()
            return
        self._trial.append((size, seconds))
        ratios = self._ratios()
        if len(ratios) >= TRIAL_STEPS:
            self._judge(statistics.median(ratios) < 1 - MARGIN)
        elif len(self._trial) >= LONGEST_TRIAL:
            self._next_candidate()

    def _ratios(self) -> list[float]:
        """Each comparable trial step's duration over the median of recent steps of its size."""
        ratios: list[float] = []
        for size, seconds in self._trial:
            recent = self._recent.get(size)
            if recent is not None and len(recent) >= MIN_COMPARABLE:
                ratios.append(seconds / statistics.median(recent))
        return ratios

    def _judge(self, faster: bool) -> None:
        if not faster:
            self._next_candidate()
            if not self._candidates:
                self._interval = min(self._interval * 2, LONGEST_INTERVAL)
                self._until_trial = self._interval
            return
        self._current = self._candidates[-1]
        self._recent = {}
        for size, seconds in self._trial:
            self._recent.setdefault(size, deque(maxlen=SAMPLES)).append(seconds)
        self._candidates, self._trial = [], []
        self._interval = FIRST_INTERVAL
        self._until_trial = self._interval

    def _next_candidate(self) -> None:
        self._candidates.pop()
        self._trial = []
        if not self._candidates:
            self._until_trial = max(self._until_trial, self._interval)

    def _neighbours(self) -> list[int]:
        """The counts beside the current one."""
        index = self._choices.index(self._current)
        return self._choices[max(index - 1, 0) : index] + self._choices[index + 1 : index + 2]
