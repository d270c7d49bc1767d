"""Rate-limited log lines: events a stranger can cause at will (failed TLS handshakes, for one)
must not let that stranger fill the disk with the broker's log."""

from __future__ import annotations

import time
from collections.abc import Callable


class LogSampler:
    """At most ``burst`` lines per ``period`` seconds; the first line after a quiet spell says
    how many were left out."""

    __slots__ = ("_burst", "_clock", "_left", "_period", "_skipped", "_window_end")

    def __init__(self, burst: int = 10, period: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._burst = burst
        self._period = period
        self._clock = clock
        self._window_end = 0.0
        self._left = 0
        self._skipped = 0

    def admit(self) -> int | None:
        """None: leave this line out. Otherwise write it, mentioning the returned number of
        lines left out before it (when not 0)."""
        now = self._clock()
        if now >= self._window_end:
            self._window_end = now + self._period
            self._left = self._burst
        if self._left == 0:
            self._skipped += 1
            return None
        self._left -= 1
        skipped, self._skipped = self._skipped, 0
        return skipped
