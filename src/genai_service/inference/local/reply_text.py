"""Token bytes to client text: UTF-8 characters split across tokens, and stop sequences."""

from __future__ import annotations

import codecs
from collections.abc import Sequence


class ReplyText:
    """Turns token pieces into text that is safe to send.

    Text that could be the start of a stop sequence is held back until the next pieces show
    whether it is one, so a stop sequence never leaks into the reply, not even partially.
    """

    def __init__(self, stop: Sequence[str]) -> None:
        self._stop = tuple(s for s in stop if s)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._held = ""
        self.stopped = False

    def push(self, piece: bytes) -> str:
        """Add one token's bytes; returns the text that can be sent now."""
        if self.stopped:
            return ""
        text = self._held + self._decoder.decode(piece)
        if not self._stop:
            self._held = ""
            return text
        found = [i for i in (text.find(s) for s in self._stop) if i >= 0]
        if found:
            self.stopped = True
            self._held = ""
            return text[: min(found)]
        keep = self._partial_stop_suffix(text)
        self._held = text[len(text) - keep :]
        return text[: len(text) - keep]

    def flush(self) -> str:
        """The text still held back, once generation ended for another reason than a stop.

        Bytes of a character the reply was cut in the middle of (by `max_tokens`) are dropped.
        """
        if self.stopped:
            return ""
        text, self._held = self._held, ""
        self._decoder.reset()
        return text

    def _partial_stop_suffix(self, text: str) -> int:
        """Length of the longest end of `text` that a stop sequence starts with."""
        longest = 0
        for stop in self._stop:
            for size in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:size]):
                    longest = size
                    break
        return longest
