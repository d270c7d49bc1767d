"""What outlives a connection: subscriptions, queued and in-flight messages, the will.

Delivery state follows MQTT 4.3/4.4: an outgoing QoS 1 or 2 message holds a packet identifier
from the moment its PUBLISH is sent until its handshake ends, and only ``send_window`` of them
(the client's Receive Maximum, capped by ``max_inflight_messages``) may be open at once;
the rest wait in the queue, in order.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..auth import ClientInfo
    from ..persistence import Store
    from ._connection import Connection
    from ._message import Message
    from ._router import Subscription

log = logging.getLogger("culex")

NEVER_EXPIRES = 0xFFFFFFFF  # MQTT 5.0 3.1.2.11.2

AWAITING_ACK = 0  # PUBLISH sent, waiting for PUBACK (QoS 1) or PUBREC (QoS 2)
AWAITING_COMP = 1  # PUBREL sent, waiting for PUBCOMP
WRITTEN_BEFORE = -1  # Outgoing.batch of a delivery restored from the store


class Outgoing:
    """One message on its way to one session."""

    __slots__ = ("batch", "message", "packet_id", "qos", "retain", "seq", "state", "sub_ids")

    def __init__(self, message: Message, qos: int, retain: bool,
                 sub_ids: tuple[int, ...]) -> None:
        self.message = message
        self.qos = qos
        self.retain = retain
        self.sub_ids = sub_ids
        self.packet_id = 0
        self.state = AWAITING_ACK
        self.seq = 0  # its row in a persistent store, 0 if it has none
        # The store batch that last wrote that row: 0 while it is not written yet, WRITTEN_BEFORE
        # for a row read back at start.
        self.batch = 0


class Limits:
    """The queueing limits a session obeys (Mosquitto's option names; 0 means no limit)."""

    __slots__ = ("max_inflight_messages", "max_queued_bytes", "max_queued_messages",
                 "queue_qos0_messages")

    def __init__(self, max_inflight_messages: int = 20, max_queued_messages: int = 1000,
                 max_queued_bytes: int = 0, queue_qos0_messages: bool = False) -> None:
        self.max_inflight_messages = max_inflight_messages
        self.max_queued_messages = max_queued_messages
        self.max_queued_bytes = max_queued_bytes
        self.queue_qos0_messages = queue_qos0_messages


class Session:
    __slots__ = ("_next_id", "awaiting_rel", "client", "client_id", "connection",
                 "disconnected_at", "dropped", "expiry_handle", "expiry_interval", "inflight",
                 "limits", "overflowing", "queue", "queued_bytes", "read_allowed", "store",
                 "subscriptions", "will", "will_delay", "will_expiry", "will_handle")

    def __init__(self, client_id: str, expiry_interval: int, limits: Limits) -> None:
        self.client_id = client_id
        self.expiry_interval = expiry_interval
        self.limits = limits
        self.connection: Connection | None = None
        self.subscriptions: dict[str, Subscription] = {}  # full filter, $share/... included
        self.inflight: dict[int, Outgoing] = {}  # in the order the PUBLISHes were sent
        # The queue and the QoS 2 ids are made on first use: most sessions never need them,
        # and an empty deque alone costs 760 bytes per client.
        self.queue: deque[Outgoing] | None = None
        self.queued_bytes = 0
        self.dropped = 0  # messages refused because the queue was full
        self.overflowing = False  # dropping now; logged once when it starts and when it ends
        # Packet ids of inbound QoS 2 messages delivered but not yet released (MQTT 4.3.3).
        self.awaiting_rel: set[int] | None = None
        self._next_id = 0
        self.will: Message | None = None
        self.will_delay = 0
        self.will_expiry: int | None = None  # seconds, counted from the will's publication
        self.will_handle: Any = None
        self.expiry_handle: Any = None
        # Who last connected with this session, for access checks while it is offline too,
        # and the answers of those checks per topic (emptied when either changes).
        self.client: ClientInfo | None = None
        self.read_allowed: dict[str, bool] = {}
        # Where a persistent session records its changes (None: not persistent, or no store).
        self.store: Store | None = None
        self.disconnected_at: float | None = None  # on the broker's clock

    # -- delivery ---------------------------------------------------------------------------

    def deliver(self, message: Message, qos: int, retain: bool,
                sub_ids: tuple[int, ...] = ()) -> None:
        conn = self.connection
        if conn is not None and not conn.paused:
            if qos == 0:
                conn.send_publish(message, 0, retain, False, 0, sub_ids)
                return
            if not self.queue and len(self.inflight) < conn.send_window:
                self._send_new(conn, Outgoing(message, qos, retain, sub_ids))
                return
        elif conn is None and qos == 0 and not self.limits.queue_qos0_messages:
            return  # QoS 0 is not kept for an offline client, as in Mosquitto
        # Offline, or online with a full socket buffer (a slow consumer): queued, within the
        # queue limits, so that memory per client stays bounded.
        self._enqueue(Outgoing(message, qos, retain, sub_ids))

    def _enqueue(self, out: Outgoing) -> None:
        limits = self.limits
        size = len(out.message.payload)
        queued = len(self.queue) if self.queue is not None else 0
        if ((limits.max_queued_messages and queued >= limits.max_queued_messages)
                or (limits.max_queued_bytes
                    and self.queued_bytes + size > limits.max_queued_bytes)):
            if not self.overflowing:
                # Once per overflow, not once per message: a flood must not flood the log too.
                self.overflowing = True
                log.warning("dropping messages for client %s: its queue is full "
                            "(max_queued_messages %d, max_queued_bytes %d)", self.client_id,
                            limits.max_queued_messages, limits.max_queued_bytes)
            self.dropped += 1
            return
        if self.queue is None:
            self.queue = deque()
        self.queue.append(out)
        self.queued_bytes += size
        if self.store is not None:
            self.store.outgoing_saved(self, out)

    def _send_new(self, conn: Connection, out: Outgoing) -> None:
        out.packet_id = self._allocate_id()
        store = self.store
        if store is not None:
            # Recorded before the PUBLISH is written, so that the write waits for it: a
            # packet id the client saw must survive a restart (MQTT 4.3.3, 4.4).
            store.outgoing_saved(self, out)
        if conn.send_publish(out.message, out.qos, out.retain, False, out.packet_id,
                             out.sub_ids):
            self.inflight[out.packet_id] = out
        elif store is not None:
            # Too large for this client: dropped as if delivered (MQTT-3.1.2-25).
            store.outgoing_removed(self, out)

    def _allocate_id(self) -> int:
        # MQTT-2.2.1-4: non-zero and not in use by another unacknowledged PUBLISH.
        pid = self._next_id
        inflight = self.inflight
        for _ in range(65535):
            pid = pid % 65535 + 1
            if pid not in inflight:
                self._next_id = pid
                return pid
        raise RuntimeError("no free packet identifier")  # the window is at most 65,535

    def pump(self, now: float) -> None:
        """Send queued messages while the in-flight window has room."""
        conn = self.connection
        queue = self.queue
        while (queue and conn is not None and not conn.paused
               and len(self.inflight) < conn.send_window):
            out = queue.popleft()
            self.queued_bytes -= len(out.message.payload)
            expired = out.message.expired(now)  # MQTT-3.3.2-5: not delivered
            if out.qos and not expired:
                self._send_new(conn, out)
                continue
            if self.store is not None:
                self.store.outgoing_removed(self, out)
            if not expired:
                conn.send_publish(out.message, 0, out.retain, False, 0, out.sub_ids)
        if self.overflowing and not queue:
            self.overflowing = False
            log.info("client %s has caught up; %d messages dropped for it so far",
                     self.client_id, self.dropped)

    def resume(self, now: float) -> None:
        """On reconnection: re-send every unacknowledged PUBLISH (DUP set) and PUBREL in their
        original order (MQTT-4.4.0-1, MQTT-4.6.0-1), then what is queued."""
        conn = self.connection
        assert conn is not None
        for pid, out in list(self.inflight.items()):
            if out.state == AWAITING_ACK:
                if not conn.send_publish(out.message, out.qos, out.retain, True, pid,
                                         out.sub_ids):
                    del self.inflight[pid]
                    if self.store is not None:
                        self.store.outgoing_removed(self, out)
            else:
                conn.send_pubrel(pid)
        self.pump(now)

    def awaits_release(self, packet_id: int) -> bool:
        return self.awaiting_rel is not None and packet_id in self.awaiting_rel

    def await_release(self, packet_id: int) -> None:
        """An inbound QoS 2 message was delivered; its PUBREL is awaited (MQTT 4.3.3)."""
        if self.awaiting_rel is None:
            self.awaiting_rel = set()
        self.awaiting_rel.add(packet_id)
        if self.store is not None:
            self.store.release_awaited(self, packet_id, True)

    def release(self, packet_id: int) -> bool:
        """PUBREL came: whether ``packet_id`` was awaited."""
        if self.awaiting_rel is None or packet_id not in self.awaiting_rel:
            return False
        self.awaiting_rel.discard(packet_id)
        if self.store is not None:
            # The PUBCOMP waits for this: a packet id still awaited after a restart would
            # make the client's next message with that id look like a duplicate.
            self.store.release_awaited(self, packet_id, False)
        return True

    # -- acknowledgements of outgoing messages ----------------------------------------------

    def on_puback(self, packet_id: int, now: float) -> bool:
        out = self.inflight.get(packet_id)
        if out is None or out.qos != 1:
            return False
        self._done(packet_id, out, now)
        return True

    def _done(self, packet_id: int, out: Outgoing, now: float) -> None:
        del self.inflight[packet_id]
        if self.store is not None:
            self.store.outgoing_removed(self, out)
        self.pump(now)

    def on_pubrec(self, packet_id: int, failed: bool, now: float) -> bool:
        """Whether a PUBREL is to be sent for ``packet_id``."""
        out = self.inflight.get(packet_id)
        if out is None or out.qos != 2:
            return False
        if failed:  # a PUBREC reason code >= 0x80 ends the exchange (MQTT 4.3.3)
            self._done(packet_id, out, now)
            return False
        out.state = AWAITING_COMP
        if self.store is not None:
            # The PUBREL waits for this: resent as a PUBLISH after a restart, a message the
            # client has completed would reach it twice.
            self.store.outgoing_saved(self, out)
        return True

    def on_pubcomp(self, packet_id: int, now: float) -> bool:
        out = self.inflight.get(packet_id)
        if out is None or out.state != AWAITING_COMP:
            return False
        self._done(packet_id, out, now)
        return True
