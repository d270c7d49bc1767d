"""Will delay and session expiry: what happens to a session after its client has gone.

MQTT 5.0 3.1.2.5 and 3.1.2.11: the will is published when the connection ends without a
normal DISCONNECT, after its Will Delay Interval, or when the session ends if that comes first;
a session ends Session Expiry Interval seconds after its connection (never, for 0xFFFFFFFF).
The timers live here, one per session at most of each kind, not in the sessions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._session import NEVER_EXPIRES

if TYPE_CHECKING:
    from ..observability import Counters
    from ._broker import Scheduler
    from ._message import Message
    from ._session import Session

log = logging.getLogger("culex")


class Lifetime:
    def __init__(self, scheduler: Scheduler, publish: Callable[[Message], object],
                 end: Callable[[Session], None], counters: Counters) -> None:
        self._scheduler = scheduler
        self._counters = counters
        self._publish = publish
        self._end = end  # ends a session whose time is up (calls ending() first)
        self._expiry: dict[Session, Any] = {}  # session -> its expiry timer
        self._wills: dict[Session, Any] = {}  # session -> its delayed will's timer

    def resumed(self, session: Session) -> None:
        """A client is back: its session no longer expires, and a delayed will is not sent
        (MQTT-3.1.3-9)."""
        self._cancel(session)
        session.set_will(None)

    def disconnected(self, session: Session, publish_will: bool) -> None:
        """The session's connection ended (``publish_will``: without a normal DISCONNECT)."""
        session.detach(self._scheduler.time())
        if session.will is not None:
            if not publish_will:
                session.set_will(None)
            elif session.will_delay == 0 or session.expiry_interval == 0:
                self._publish_will(session)
            elif session.will_delay < session.expiry_interval:
                self._wills[session] = self._scheduler.call_later(session.will_delay,
                                                                  self._will_due, session)
            # else: the session ends first, and ending() publishes the will then.
        if session.expiry_interval == 0:
            self._end(session)
            return
        if session.expiry_interval != NEVER_EXPIRES:
            self._expiry[session] = self._scheduler.call_later(session.expiry_interval,
                                                               self._expired, session)
        session.saved()

    def restored(self, session: Session, offline: float, was_connected: bool) -> None:
        """Timers of a session read back at start, ``offline`` seconds after its client went
        away (``was_connected``: it went away when the broker stopped)."""
        if session.expiry_interval != NEVER_EXPIRES:
            left = session.expiry_interval - offline
            if left <= 0:
                log.info("expired: session of client %s (while the broker was stopped)",
                         session.client_id)
                self._counters.sessions_expired += 1
                self._end(session)
                return
            self._expiry[session] = self._scheduler.call_later(left, self._expired, session)
        if session.will is not None:
            due = session.will_delay - offline
            if due <= 0:
                # The client's connection ended when the broker stopped: its will is due.
                self._publish_will(session)
                was_connected = True
            elif session.will_delay < session.expiry_interval:
                self._wills[session] = self._scheduler.call_later(due, self._will_due,
                                                                  session)
        if was_connected:
            session.saved()

    def ending(self, session: Session) -> None:
        """The session ends now: no more timers, and a pending will is published
        (MQTT-3.1.2-8: the session ends before the will delay)."""
        self._cancel(session)
        self._publish_will(session)

    def _cancel(self, session: Session) -> None:
        for timers in (self._expiry, self._wills):
            handle = timers.pop(session, None)
            if handle is not None:
                handle.cancel()

    def _will_due(self, session: Session) -> None:
        self._wills.pop(session, None)
        self._publish_will(session)
        session.saved()

    def _publish_will(self, session: Session) -> None:
        will = session.take_will(self._scheduler.time())
        if will is not None:
            self._publish(will)

    def _expired(self, session: Session) -> None:
        self._expiry.pop(session, None)
        if session.connection is None:
            log.info("expired: session of client %s", session.client_id)
            self._counters.sessions_expired += 1
            self._end(session)
