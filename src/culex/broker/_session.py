"""What outlives a connection: subscriptions, queued and in-flight messages, the will.

Delivery state follows MQTT 4.3/4.4: an outgoing QoS 1 or 2 message holds a packet identifier
from the moment its PUBLISH is sent until its handshake ends, and only ``send_window`` of them
(the client's Receive Maximum, capped by ``max_inflight_messages``) may be open at once;
the rest wait in the queue, in order.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from ._outgoing import AWAITING_ACK, AWAITING_COMP, Limits, Outgoing
from ._router import Subscription

if TYPE_CHECKING:
    from ..auth import ClientInfo
    from ..observability import Counters
    from ..persistence import Store, StoredDelivery
    from ._flow import Backpressure
    from ._message import Message
    from ._subscriptions import RetainedDelivery
    from ._target import DeliveryTarget

log = logging.getLogger("culex")

NEVER_EXPIRES = 0xFFFFFFFF  # MQTT 5.0 3.1.2.11.2

# What a session without subscriptions or messages in flight shows (most never have either:
# a sensor publishes, never subscribes; a QoS 0 subscriber has nothing in flight).
_NO_SUBSCRIPTIONS: Final[Mapping[str, Subscription]] = MappingProxyType({})
_NONE_IN_FLIGHT: Final[Mapping[int, Outgoing]] = MappingProxyType({})


class Session:
    __slots__ = ("_congesting", "_inflight", "_next_id", "_peeked", "_stream",
                 "_subscriptions", "awaiting_rel", "client", "client_id", "connection",
                 "counters", "disconnected_at", "dropped", "expiry_interval", "flow",
                 "keeps_retained", "limits", "overflowing", "queue", "queued_bytes", "store",
                 "will", "will_delay", "will_expiry")

    def __init__(self, client_id: str, expiry_interval: int, limits: Limits,
                 counters: Counters, flow: Backpressure | None = None) -> None:
        self.client_id = client_id
        self.expiry_interval = expiry_interval
        self.limits = limits
        self.counters = counters
        # Publishers wait for this session while its queue is long and its client connected.
        self.flow = flow
        self._congesting = False
        self.connection: DeliveryTarget | None = None  # where messages go while attached
        # Full filter ($share/... included) -> subscription, and packet id -> message in
        # flight (in the order the PUBLISHes were sent). These, the queue and the QoS 2 ids
        # are made on first use: many sessions never need them, and an empty dict costs 64
        # bytes per client, an empty deque 760. One subscription (a device's own commands
        # topic) is held alone: a dict of one costs 184 bytes.
        self._subscriptions: dict[str, Subscription] | Subscription | None = None
        self._inflight: dict[int, Outgoing] | None = None
        self.queue: deque[Outgoing] | None = None
        self.queued_bytes = 0
        # A bridge link's session keeps retained QoS 0 messages while it is away: they carry
        # state (a deletion, too) that must reach the other broker.
        self.keeps_retained = False
        self.dropped = 0  # messages refused because the queue was full
        self.overflowing = False  # dropping now; logged once when it starts and when it ends
        # Packet ids of inbound QoS 2 messages delivered but not yet released (MQTT 4.3.3).
        self.awaiting_rel: set[int] | None = None
        self._next_id = 0
        self.will: Message | None = None
        self.will_delay = 0
        self.will_expiry: int | None = None  # seconds, counted from the will's publication
        # Who last connected with this session, for access checks while it is offline too.
        self.client: ClientInfo | None = None
        # Where a persistent session records its changes (None: not persistent, or no store).
        self.store: Store | None = None
        self.disconnected_at: float | None = None  # on the broker's clock
        # Retained messages new subscriptions are still to receive, sent ahead of everything
        # else as the client reads them (see stream_retained); None: none are.
        self._stream: Iterator[RetainedDelivery] | None = None
        self._peeked: RetainedDelivery | None = None  # taken from it, waiting for a window

    @property
    def subscriptions(self) -> Mapping[str, Subscription]:
        """Its subscriptions by full filter (read only: changed by subscribe/unsubscribe)."""
        subs = self._subscriptions
        if subs is None:
            return _NO_SUBSCRIPTIONS
        return {subs.topic_filter: subs} if isinstance(subs, Subscription) else subs

    @property
    def inflight(self) -> Mapping[int, Outgoing]:
        """Messages in flight by packet id, in the order sent (read only)."""
        inflight = self._inflight
        return inflight if inflight is not None else _NONE_IN_FLIGHT

    def _in_flight_count(self) -> int:
        inflight = self._inflight
        return len(inflight) if inflight is not None else 0

    # -- lifetime ---------------------------------------------------------------------------

    def attach(self, target: DeliveryTarget, client: ClientInfo | None, expiry: int) -> None:
        """A client connected with this session (new, resumed or taken over)."""
        self.connection = target
        self.client = client
        self.expiry_interval = expiry
        self.disconnected_at = None

    def keep_retained(self) -> None:
        """Keep retained QoS 0 messages while detached (a bridge link's session)."""
        self.keeps_retained = True

    def set_client(self, client: ClientInfo) -> None:
        """Who last connected with this session (read back at start, while it is offline)."""
        self.client = client

    def detach(self, now: float) -> None:
        self.connection = None
        self.disconnected_at = now
        stream, self._stream = self._stream, None
        if stream is not None:
            # Offline, QoS 0 is not kept (as for any message); the rest goes ahead of what
            # waited behind the stream, in the order it would have been sent.
            first = [self._peeked] if self._peeked is not None else []
            self._peeked = None
            kept = [Outgoing(message, qos, True, sub_ids)
                    for message, qos, sub_ids in itertools.chain(first, stream) if qos]
            if kept:
                queue = deque(kept)
                if self.queue:
                    queue.extend(self.queue)
                self.queue = queue
                self.queued_bytes += sum(len(out.message.payload) for out in kept)
        if self._congesting:
            self._uncongested()  # offline, it queues without making anyone wait

    def set_expiry(self, expiry: int) -> None:
        """MQTT 5: the client changed its Session Expiry Interval at DISCONNECT."""
        self.expiry_interval = expiry

    def set_will(self, will: Message | None, delay: int = 0, expiry: int | None = None) -> None:
        """The will to publish when the connection ends (MQTT 3.1.2.5), ``delay`` seconds
        later; its Message Expiry Interval runs from its publication."""
        self.will = will
        self.will_delay = delay
        self.will_expiry = expiry

    def take_will(self, now: float) -> Message | None:
        """The will, now due: taken from the session, its expiry counted from ``now``."""
        will, self.will = self.will, None
        if will is not None and self.will_expiry is not None:
            will = will.expiring(now + self.will_expiry)
        return will

    def keep_in(self, store: Store | None, written: bool = False) -> None:
        """Record the session in ``store`` from now on (a persistent session), or nowhere;
        ``written``: it was read from that store, which has it already."""
        if written:
            self.store = store
        elif store is None:
            if self.store is not None:
                self.store.session_forgotten(self)  # MQTT 5: expiry 0 from now on
                self.store = None
        elif self.store is None:
            self.store = store
            store.session_adopted(self)
        else:
            store.session_saved(self)  # so the CONNACK waits for it, as SUBACKs do

    def saved(self) -> None:
        """The session's own fields changed: tell its store, if it has one."""
        if self.store is not None:
            self.store.session_saved(self)

    def end(self) -> list[Subscription]:
        """The session ends: forget everything; its subscriptions, for the router to drop."""
        if self.store is not None:
            self.store.session_forgotten(self)
            self.store = None
        if self._congesting:
            self._uncongested()
        subs = list(self.subscriptions.values())
        self._subscriptions = None
        self._stream = self._peeked = None
        self.queue = None
        self.queued_bytes = 0
        self._inflight = None
        return subs

    def let_go(self) -> list[Subscription]:
        """The session goes on on another node: dropped here, kept in its store; its
        subscriptions, for the router to drop."""
        store, self.store = self.store, None
        if store is not None:
            store.session_released(self)
        return self.end()

    # -- subscriptions ----------------------------------------------------------------------

    def subscribe(self, sub: Subscription, written: bool = False) -> None:
        subs = self._subscriptions
        if subs is None or (isinstance(subs, Subscription)
                            and subs.topic_filter == sub.topic_filter):
            self._subscriptions = sub
        elif isinstance(subs, Subscription):
            self._subscriptions = {subs.topic_filter: subs, sub.topic_filter: sub}
        else:
            subs[sub.topic_filter] = sub
        if self.store is not None and not written:
            self.store.subscription_saved(self, sub)

    def unsubscribe(self, topic_filter: str) -> Subscription | None:
        subs = self._subscriptions
        sub: Subscription | None = None
        if isinstance(subs, Subscription):
            if subs.topic_filter == topic_filter:
                sub, self._subscriptions = subs, None
        elif subs is not None:
            sub = subs.pop(topic_filter, None)
            if len(subs) == 1:
                self._subscriptions = next(iter(subs.values()))
        if sub is not None and self.store is not None:
            self.store.subscription_removed(self, topic_filter)
        return sub

    # -- restart ----------------------------------------------------------------------------

    def restore_delivery(self, out: Outgoing, stored: StoredDelivery) -> None:
        """A delivery read back from the store: in flight if it had a packet id, else queued."""
        if self.store is not None:
            self.store.restored(out, stored)
        if out.packet_id:
            self._track(out)
        else:
            if self.queue is None:
                self.queue = deque()
            self.queue.append(out)
            self.queued_bytes += len(out.message.payload)

    def restore_awaiting(self, packet_id: int) -> None:
        if self.awaiting_rel is None:
            self.awaiting_rel = set()
        self.awaiting_rel.add(packet_id)

    # -- delivery ---------------------------------------------------------------------------

    def stream_retained(self, retained: Iterator[RetainedDelivery], now: float) -> None:
        """Send a new subscription's retained messages (MQTT-3.3.1-9) as the client reads
        them, not all at once: a subscription to "#" may match 100,000. Live messages wait in
        the queue behind them, so that a retained value never arrives after a newer one. A
        persistent session takes them at once, into its queue on disk like any message."""
        if self.store is not None or self.connection is None:
            for message, qos, sub_ids in retained:
                self.deliver(message, qos, True, sub_ids)
            return
        self._stream = (retained if self._stream is None
                        else itertools.chain(self._stream, retained))
        self.pump(now)

    def deliver(self, message: Message, qos: int, retain: bool,
                sub_ids: tuple[int, ...] = ()) -> None:
        conn = self.connection
        if conn is not None and not conn.paused and self._stream is None:
            if qos == 0:
                if not conn.send_publish(message, 0, retain, False, 0, sub_ids):
                    self.counters.dropped["too_large"] += 1
                return
            if not self.queue and self._in_flight_count() < conn.send_window:
                self._send_new(conn, Outgoing(message, qos, retain, sub_ids))
                return
        elif (conn is None and qos == 0 and not self.limits.queue_qos0_messages
              and not (retain and self.keeps_retained)):
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
            self.counters.dropped["queue_full"] += 1
            return
        if self.queue is None:
            self.queue = deque()
        self.queue.append(out)
        self.queued_bytes += size
        if self.store is not None:
            self.store.outgoing_saved(self, out)
        if (self.flow is not None and self.connection is not None
                and (len(self.queue) >= limits.pressure_messages
                     or (limits.pressure_bytes and self.queued_bytes >= limits.pressure_bytes))):
            # A connected client that is slow to take its messages: the publisher waits.
            self.flow.congestion(self)
            self._congesting = True

    def _send_new(self, conn: DeliveryTarget, out: Outgoing) -> None:
        out.packet_id = self._allocate_id()
        store = self.store
        if store is not None:
            # Recorded before the PUBLISH is written, so that the write waits for it: a
            # packet id the client saw must survive a restart (MQTT 4.3.3, 4.4).
            store.outgoing_saved(self, out)
        if conn.send_publish(out.message, out.qos, out.retain, False, out.packet_id,
                             out.sub_ids):
            self._track(out)
            return
        # Too large for this client: dropped as if delivered (MQTT-3.1.2-25).
        self.counters.dropped["too_large"] += 1
        if store is not None:
            store.outgoing_removed(self, out)

    def _in_flight(self, packet_id: int) -> Outgoing | None:
        inflight = self._inflight
        return inflight.get(packet_id) if inflight is not None else None

    def _track(self, out: Outgoing) -> None:
        inflight = self._inflight
        if inflight is None:
            inflight = self._inflight = {}
        inflight[out.packet_id] = out

    def _untrack(self, packet_id: int) -> None:
        inflight = self._inflight
        if inflight is not None:
            del inflight[packet_id]
            if not inflight:
                self._inflight = None  # a dict keeps the size it grew to

    def _allocate_id(self) -> int:
        # MQTT-2.2.1-4: non-zero and not in use by another unacknowledged PUBLISH.
        pid = self._next_id % 65535 + 1
        inflight = self._inflight
        if inflight is None:
            self._next_id = pid
            return pid
        for _ in range(65535):
            if pid not in inflight:
                self._next_id = pid
                return pid
            pid = pid % 65535 + 1
        raise RuntimeError("no free packet identifier")  # the window is at most 65,535

    def pump(self, now: float) -> None:
        """Send retained messages still to go, then queued messages, while the client reads
        and the in-flight window has room."""
        conn = self.connection
        stream = self._stream
        if stream is not None and conn is not None:
            while not conn.paused:
                item = self._peeked
                if item is None:
                    item = next(stream, None)
                    if item is None:
                        self._stream = None
                        break
                message, qos, sub_ids = item
                if qos and self._in_flight_count() >= conn.send_window:
                    self._peeked = item
                    return
                self._peeked = None
                if message.expired(now):  # MQTT-3.3.2-5: not delivered
                    self.counters.dropped["expired"] += 1
                elif qos:
                    self._send_new(conn, Outgoing(message, qos, True, sub_ids))
                elif not conn.send_publish(message, 0, True, False, 0, sub_ids):
                    self.counters.dropped["too_large"] += 1
            if self._stream is not None:
                return  # the queue waits behind it
        queue = self.queue
        while (queue and conn is not None and not conn.paused
               and self._in_flight_count() < conn.send_window):
            out = queue.popleft()
            self.queued_bytes -= len(out.message.payload)
            expired = out.message.expired(now)  # MQTT-3.3.2-5: not delivered
            if out.qos and not expired:
                self._send_new(conn, out)
                continue
            if self.store is not None:
                self.store.outgoing_removed(self, out)
            if expired:
                self.counters.dropped["expired"] += 1
            elif not conn.send_publish(out.message, 0, out.retain, False, 0, out.sub_ids):
                self.counters.dropped["too_large"] += 1
        if self._congesting and not queue:
            self._uncongested()
        if self.overflowing and not queue:
            self.overflowing = False
            log.info("client %s has caught up; %d messages dropped for it so far",
                     self.client_id, self.dropped)

    def _uncongested(self) -> None:
        self._congesting = False
        if self.flow is not None:
            self.flow.drained(self)

    def resume(self, now: float) -> None:
        """On reconnection: re-send every unacknowledged PUBLISH (DUP set) and PUBREL in their
        original order (MQTT-4.4.0-1, MQTT-4.6.0-1), then what is queued."""
        conn = self.connection
        assert conn is not None
        for pid, out in list(self.inflight.items()):
            if out.state == AWAITING_ACK:
                if not conn.send_publish(out.message, out.qos, out.retain, True, pid,
                                         out.sub_ids):
                    self._untrack(pid)
                    self.counters.dropped["too_large"] += 1
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
        out = self._in_flight(packet_id)
        if out is None or out.qos != 1:
            return False
        self._done(packet_id, out, now)
        return True

    def _done(self, packet_id: int, out: Outgoing, now: float) -> None:
        self._untrack(packet_id)
        if self.store is not None:
            self.store.outgoing_removed(self, out)
        self.pump(now)

    def in_flight_qos(self, packet_id: int) -> int:
        """The QoS of the message in flight under ``packet_id`` (0: none is)."""
        out = self._in_flight(packet_id)
        return 0 if out is None else out.qos

    def on_pubrec(self, packet_id: int, failed: bool, now: float) -> bool:
        """Whether a PUBREL is to be sent for ``packet_id``."""
        out = self._in_flight(packet_id)
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
        out = self._in_flight(packet_id)
        if out is None or out.state != AWAITING_COMP:
            return False
        self._done(packet_id, out, now)
        return True
