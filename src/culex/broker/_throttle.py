"""Failed logins slow their address down, so that a password cannot be tried thousands of
times a second: each attempt from an address with recent failures waits FIRST_DELAY, doubled
per failure, up to the configured maximum, and attempts from one address wait their turns
(opening more connections does not go faster). An address's failures are forgotten FORGET_AFTER
seconds after its last one. Logged at each power of two of an address's failures from two on;
each attempt made to wait is counted (``auth_throttled``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..observability import Counters
    from ._broker import Scheduler

log = logging.getLogger("culex")

FIRST_DELAY = 0.1
FORGET_AFTER = 60.0
# Addresses remembered at most: a scan from many addresses must not grow this without bound
# (the oldest are forgotten first).
MAX_ADDRESSES = 65536


def address_of(peer: str) -> str:
    """The address of a peer written as "host:port"."""
    host, _, _ = peer.rpartition(":")
    return host or peer


class Throttle:
    def __init__(self, scheduler: Scheduler, max_delay: float, counters: Counters) -> None:
        self._scheduler = scheduler
        self._max_delay = max_delay
        self._counters = counters
        # address -> (recent failures, time of the last one, time its next attempt may run)
        self._failures: dict[str, tuple[int, float, float]] = {}

    def wait(self, address: str) -> float:
        """Seconds an attempt from ``address`` starting now waits for its turn (0: none);
        the turn after it is taken as well."""
        record = self._failures.get(address)
        if record is None or not self._max_delay:
            return 0.0
        failures, last, turn = record
        now = self._scheduler.time()
        if now - last > FORGET_AFTER:
            del self._failures[address]
            return 0.0
        delay = min(self._max_delay, FIRST_DELAY * (1 << min(failures - 1, 30)))
        start = max(now, turn) + delay
        self._failures[address] = (failures, last, start)
        self._counters.auth_throttled += 1
        return start - now

    def failed(self, address: str) -> None:
        now = self._scheduler.time()
        failures, last, turn = self._failures.pop(address, (0, now, now))
        if now - last > FORGET_AFTER:
            failures = 0
        failures += 1
        self._failures[address] = (failures, now, turn)  # the newest last
        if len(self._failures) > MAX_ADDRESSES:
            del self._failures[next(iter(self._failures))]
        if self._max_delay and failures >= 2 and failures & (failures - 1) == 0:
            log.warning("%d failed logins from %s: its attempts are slowed down (up to %gs "
                        "each)", failures, address, self._max_delay)
