"""Progress lines for long work (render, features, epochs), readable in a terminal and in log files."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    """'1h02m', '3m05s' or '12.3s'."""
    if seconds >= 3600:
        return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"
    if seconds >= 60:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{seconds:.1f}s"


class Progress:
    """Counts units of work and prints 'label: done/total (rate, ETA)' at most every ``interval`` s."""

    def __init__(
        self, label: str, total: int, unit: str = "items", interval: float = 5.0, stream: TextIO | None = None
    ) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.interval = interval
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.started = time.perf_counter()
        self._last_print = -float("inf")

    def advance(self, count: int = 1, note: str = "") -> None:
        """Record ``count`` more units; print a line when the interval has passed or all are done."""
        self.done += count
        now = time.perf_counter()
        if now - self._last_print >= self.interval or self.done >= self.total:
            self._last_print = now
            self.stream.write(self.line(note) + "\n")
            self.stream.flush()

    def line(self, note: str = "") -> str:
        """The current progress line."""
        elapsed = time.perf_counter() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        remaining = (self.total - self.done) / rate if rate > 0 else float("nan")
        eta = format_duration(remaining) if rate > 0 else "?"
        text = (
            f"{self.label}: {self.done}/{self.total} {self.unit} "
            f"({rate:.2f}/s, elapsed {format_duration(elapsed)}, ETA {eta})"
        )
        return f"{text} {note}".rstrip()
