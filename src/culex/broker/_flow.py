"""Back-pressure from subscribers to publishers.

A subscriber that reads, but slower than its publishers write, must slow them down rather than
lose messages: when a delivery to an online session has to wait in its queue (its connection's
output buffer is full, or its in-flight window is), the publisher's reading is paused until
that session's queue has drained. A subscriber that has stopped reading must not stop its
publishers: a publisher waits for a session at most ``MAX_WAIT`` seconds; a session that has
not drained by then is *stalled*, makes nobody wait until it drains, and only it loses
messages once its queue is full (counted and logged, as always).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._broker import Scheduler
    from ._session import Session

# Longest wait of a publisher for a congested subscriber: a subscriber that reads drains its
# queue in milliseconds; one that does not is declared stalled after this.
MAX_WAIT = 0.5


class Waiter(Protocol):
    """A publisher whose reading can be paused (a client connection)."""

    def hold_reading(self) -> None: ...

    def release_reading(self) -> None: ...


class Backpressure:
    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler
        # Sessions that queued a message while online during the publish being handled.
        self.congested: list[Session] = []
        self._waiters: dict[Session, set[Waiter]] = {}  # session -> publishers waiting for it
        self._waits: dict[Waiter, tuple[set[Session], Any]] = {}  # publisher -> (sessions, timer)
        self._stalled: set[Session] = set()

    def congestion(self, session: Session) -> None:
        """A delivery to ``session`` (online) waits in a long queue: its publisher is to wait
        for it, unless the session is stalled."""
        if session not in self._stalled:
            self.congested.append(session)

    def slow_down(self, publisher: Waiter) -> None:
        """After a publish: ``publisher`` waits for the sessions that had to queue it."""
        congested, self.congested = self.congested, []
        wait = self._waits.get(publisher)
        if wait is None:
            timer = self._scheduler.call_later(MAX_WAIT, self._timed_out, publisher)
            wait = self._waits[publisher] = (set(), timer)
            publisher.hold_reading()
        sessions = wait[0]
        for session in congested:
            if session not in sessions:
                sessions.add(session)
                self._waiters.setdefault(session, set()).add(publisher)

    def forget_congestion(self) -> None:
        """A delivery made by the broker itself (a will, retained messages): nobody waits."""
        self.congested.clear()

    def drained(self, session: Session) -> None:
        """``session``'s queue is empty (or the session ended): its publishers may go on."""
        self._stalled.discard(session)
        for publisher in self._waiters.pop(session, ()):
            wait = self._waits.get(publisher)
            if wait is None:
                continue
            wait[0].discard(session)
            if not wait[0]:
                self._release(publisher)

    def _timed_out(self, publisher: Waiter) -> None:
        wait = self._waits.get(publisher)
        if wait is None:
            return
        for session in wait[0]:
            self._stalled.add(session)  # not read from in time: it waits on its own now
            waiters = self._waiters.get(session)
            if waiters is not None:
                waiters.discard(publisher)
                if not waiters:
                    del self._waiters[session]
        self._release(publisher)

    def _release(self, publisher: Waiter) -> None:
        _, timer = self._waits.pop(publisher)
        timer.cancel()
        publisher.release_reading()
