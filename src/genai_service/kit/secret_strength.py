"""How hard a secret is to guess: an estimate of its entropy in bits, from the text alone.

Each character costs what picking it from its alphabet costs (the character classes the secret
uses: lowercase, uppercase, digits, ASCII punctuation, anything else), except where the text is
predictable: a stretch that repeats text seen before (`Password1Password1...`) or runs by a
constant step (`aaaa`, `abcd`, `4321`, `qwerty`) costs only what it takes to say where it
starts and how long it is. The estimate knows no dictionary, so it overrates words strung
together; it underrates nothing a generator such as `secrets.token_urlsafe` produces.
"""

from __future__ import annotations

import math
import string

MIN_RUN = 3
"""Shorter repeats and runs are left to chance: random text has them."""

_CLASSES = (
    (frozenset(string.ascii_lowercase), 26),
    (frozenset(string.ascii_uppercase), 26),
    (frozenset(string.digits), 10),
    (frozenset(string.punctuation + " "), 33),
)
_OTHER_CLASS_SIZE = 100
_KEYBOARD_ROWS = ("`1234567890-=", "qwertyuiop[]\\", "asdfghjkl;'", "zxcvbnm,./")
# A key's position: rows far apart, so a step of one never crosses from one row to the next.
_KEYBOARD = {
    key: 100 * row + col for row, keys in enumerate(_KEYBOARD_ROWS) for col, key in enumerate(keys)
}


def alphabet_size(secret: str) -> int:
    size = sum(n for chars, n in _CLASSES if any(c in chars for c in secret))
    if any(not any(c in chars for chars, _ in _CLASSES) for c in secret):
        size += _OTHER_CLASS_SIZE
    return max(size, 1)


def _repeat_length(secret: str, start: int) -> int:
    """Length of the longest stretch at `start` that copies text starting earlier (it may
    overlap itself, as in `abababab`)."""
    best = 0
    for source in range(start):
        length = 0
        while start + length < len(secret) and secret[source + length] == secret[start + length]:
            length += 1
        best = max(best, length)
    return best


def _run_length(secret: str, start: int) -> int:
    """Length of the run at `start` that moves by one constant step: of -1, 0 or 1 in code
    points (`aaaa`, `abcd`, `4321`), or of one key left or right along a keyboard row (`qwerty`,
    `lkjh`)."""
    return max(
        _stepped_length([ord(c) for c in secret[start:]]),
        _stepped_length(
            [_KEYBOARD.get(c.lower(), -1000 * i) for i, c in enumerate(secret[start:])]
        ),
    )


def _stepped_length(positions: list[int]) -> int:
    if len(positions) < 2:
        return len(positions)
    step = positions[1] - positions[0]
    if step not in (-1, 0, 1):
        return 1
    length = 2
    while length < len(positions) and positions[length] - positions[length - 1] == step:
        length += 1
    return length


def estimate_entropy_bits(secret: str) -> float:
    if not secret:
        return 0.0
    per_character = math.log2(alphabet_size(secret))
    position_bits = math.log2(len(secret) + 1)
    bits = 0.0
    index = 0
    while index < len(secret):
        repeat = _repeat_length(secret, index)
        run = _run_length(secret, index)
        if repeat >= MIN_RUN and repeat >= run:
            bits += 2 * position_bits  # where the copy comes from, and how long it is
            index += repeat
        elif run >= MIN_RUN:
            bits += per_character + position_bits + math.log2(3)  # first character, length, step
            index += run
        else:
            bits += per_character
            index += 1
    return bits
