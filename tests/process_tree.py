"""The memory of a process and its descendants (Linux `/proc`), sampled while a test runs."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import TracebackType

PAGE_SIZE = 4096


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # ended meanwhile
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def children(pid: int) -> set[int]:
    """The processes whose parent is `pid`."""
    return {
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and _parent_of(int(entry.name)) == pid
    }


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (children, their children, ...)."""
    parents = {
        int(entry.name): _parent_of(int(entry.name))
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit()
    }
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def resident_bytes(pid: int) -> int:
    """Resident memory of one process; 0 once it has ended."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
    except OSError:
        return 0


def tree_resident_bytes(pid: int) -> int:
    return sum(resident_bytes(p) for p in {pid, *descendants(pid)})


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class PeakMemory:
    """Samples the resident memory of `pid`'s process tree every `interval_s` on a thread;
    `peak` is the largest sum seen. The process list is refreshed every few samples, so a
    child that lives a fraction of a second is still caught."""

    def __init__(self, pid: int, *, interval_s: float = 0.02) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="peak-memory", daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        tree = {self.pid}
        samples = 0
        while not self._stop.is_set():
            if samples % 5 == 0:
                tree = {self.pid, *descendants(self.pid)}
            self.peak = max(self.peak, sum(resident_bytes(p) for p in tree))
            samples += 1
            time.sleep(self.interval_s)
