"""Tickets: what a connection's writes wait for in a cluster (a message stored in JetStream, a
subscription known to NATS), released to it in the order they were issued."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..broker._peers import PeerHolder


class Tickets:
    def __init__(self) -> None:
        self._last = 0
        # Per waiting connection, its tickets in order, each with whether it is done.
        self._pending: dict[PeerHolder, deque[list[int]]] = {}

    def issue(self, conn: PeerHolder) -> int:
        """A new ticket: ``conn``'s next writes wait for it."""
        self._last += 1
        ticket = self._last
        queue = self._pending.get(conn)
        if queue is None:
            queue = self._pending[conn] = deque()
        queue.append([ticket, 0])
        conn.hold_for_peers(ticket)
        return ticket

    def done(self, conn: PeerHolder, ticket: int) -> None:
        """``ticket`` is done; ``conn`` gets every ticket done up to the first that is not."""
        queue = self._pending.get(conn)
        if queue is None:
            return
        for entry in queue:
            if entry[0] == ticket:
                entry[1] = 1
                break
        released = 0
        while queue and queue[0][1]:
            released = queue.popleft()[0]
        if not queue:
            del self._pending[conn]
        if released:
            conn.release_for_peers(released)

    @property
    def waiting(self) -> int:
        """Tickets not yet done (all connections)."""
        return sum(len(queue) for queue in self._pending.values())
