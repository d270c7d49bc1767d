"""Writes that wait: a connection's replies held until what they depend on is safe, on the
store's disk (a commit batch) or, in a cluster, with the other nodes (a ticket), then let go in
the order they were written (MQTT-4.6.0-2, -3: acknowledgements in order)."""

from __future__ import annotations

from ._parts import ConnectionParts
from ._states import CLOSED


class HeldWrites:
    __slots__ = ("_items", "_peers_done", "_peers_until", "_store_done", "_store_until")

    def __init__(self, store_done: int, peers_done: int) -> None:
        self._items: list[tuple[int, int, bytes | memoryview]] = []
        self._store_until = 0  # the batch the next writes wait for (0: none)
        self._peers_until = 0  # the ticket they wait for (0: none)
        self._store_done = store_done
        self._peers_done = peers_done

    def wait_for_store(self, batch: int) -> None:
        self._store_until = batch

    def wait_for_peers(self, ticket: int) -> None:
        self._peers_until = ticket

    def add(self, data: bytes | memoryview) -> None:
        self._items.append((self._store_until, self._peers_until, data))

    def first_batch(self) -> int:
        return self._items[0][0] if self._items else 0

    def release(self, store_done: int, peers_done: int) -> list[bytes | memoryview]:
        """What may go out now that the store committed up to ``store_done`` and the peers
        are done up to ``peers_done``, in order."""
        self._store_done, self._peers_done = store_done, peers_done
        items = self._items
        count = 0
        for batch, ticket, _ in items:
            if batch > store_done or ticket > peers_done:
                break
            count += 1
        out = [data for _, _, data in items[:count]]
        del items[:count]
        if self._store_until <= store_done:
            self._store_until = 0
        if self._peers_until <= peers_done:
            self._peers_until = 0
        return out

    @property
    def empty(self) -> bool:
        """Nothing waits, and nothing will: the connection may write directly again."""
        return not self._items and not self._store_until and not self._peers_until


class Holds(ConnectionParts):
    """The connection's side of it (the first part of Connection, see _parts)."""

    __slots__ = ()

    def hold(self, batch: int) -> None:
        """From now on, writes wait until the store has committed ``batch`` (a durable store
        calls this when it records a change this client's next reply depends on)."""
        self._holding().wait_for_store(batch)

    def release(self, batch: int) -> None:
        """The store committed ``batch``: what waited for it goes out, in order."""
        self._store_done = max(self._store_done, batch)
        self._write_released()

    def hold_for_peers(self, ticket: int) -> None:
        """In a cluster: from now on, writes also wait until the other nodes are done with
        ``ticket`` (a message stored in JetStream, a subscription known to NATS)."""
        self._holding().wait_for_peers(ticket)

    def _holding(self) -> HeldWrites:
        if self._held is None:
            self._held = HeldWrites(self._store_done, self._peers_done)
        return self._held

    def release_for_peers(self, ticket: int) -> None:
        """The peers are done with every ticket up to ``ticket`` of this connection."""
        self._peers_done = max(self._peers_done, ticket)
        self._write_released()

    def _write_released(self) -> None:
        held = self._held
        if held is None:
            return
        out = held.release(self._store_done, self._peers_done)
        if self.state is not CLOSED and out:
            for data in out:
                self.sink.write(data)
            # Released from a store or cluster callback, not while reading this client: the
            # write goes out now instead of one loop iteration later.
            self.sink.flush()
        if held.empty:
            self._held = None

    def waiting_for(self) -> int:
        """The first store batch a held write waits for (0: none is held)."""
        return self._held.first_batch() if self._held is not None else 0
