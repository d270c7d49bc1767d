"""Orchestration: connection events -> sessions, router, retained store, lifetime timers.

The broker owns no sockets and no event loop. It is given a scheduler (``call_later`` and
``time``, which an asyncio loop provides) and its connections call into it as their ``Host``.
Each concern is a module of its own: CONNECT handling (``_connect``), fan-out (``_fanout``),
subscriptions (``_subscriptions``), will delay and session expiry (``_lifetime``), restart
(``_restore``); this class wires them together and keeps the registry of sessions.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from ..auth import Action, AuthChain, ClientInfo
from ..observability import Counters, Gauges
from ..persistence import Snapshot, Store
from ..protocol import (
    NO_PROPERTIES,
    AssemblyBudget,
    Connect,
    Publish,
    ReasonCode,
    Subscribe,
    Unsubscribe,
)
from ._connect import (
    Accepted,
    Handshake,
    Refusal,
    check_connect,
    connack_properties,
    connack_too_large,
    is_sys_topic,
    negotiate,
    session_expiry,
    will_of,
)
from ._connection import Connection
from ._deadlines import Deadlines
from ._fanout import Fanout
from ._flow import Backpressure
from ._lifetime import Lifetime
from ._message import Message
from ._outgoing import Limits
from ._restore import rebuild
from ._retained import RetainedStore
from ._router import Router
from ._session import NEVER_EXPIRES, Session
from ._subscriptions import RetainedDelivery, Subscriptions

if TYPE_CHECKING:
    from ..config import Config, ListenerConfig
    from ._connect import Verdict
    from ._host import Publisher
    from ._peers import Peers
    from ._target import DeliveryTarget

log = logging.getLogger("culex")


class Scheduler(Protocol):
    """What the broker needs of an event loop (an asyncio loop is one)."""

    def call_later(self, delay: float, callback: Any, *args: Any) -> Any: ...

    def time(self) -> float: ...

    def create_task(self, coro: Coroutine[Any, Any, Any]) -> Any: ...


class Broker:
    def __init__(self, config: Config, scheduler: Scheduler,
                 auth: AuthChain | None = None, store: Store | None = None,
                 counters: Counters | None = None) -> None:
        self.config = config
        self.scheduler = scheduler
        self.clock = scheduler.time
        self.auth = auth or AuthChain()
        self.store = store or Store()
        self.counters = counters or Counters()
        self.sessions: dict[str, Session] = {}
        self.router = Router()
        self.retained = RetainedStore()
        self.limits = Limits(config.max_inflight_messages, config.max_queued_messages,
                             config.max_queued_bytes, config.queue_qos0_messages)
        # Attached to a session (a dict as a set: 24 bytes an entry where a set takes 32-64)
        self.connections: dict[DeliveryTarget, None] = {}
        self.deadlines = Deadlines(scheduler)  # CONNECT timeouts and keep-alive checks
        self.assembly = AssemblyBudget(config.large_packet_memory)  # large packets, all clients
        self.fanout = Fanout(self.router, self.retained, self.store, self.auth, self.counters)
        self.subscriptions = Subscriptions(config, self.router, self.retained, self.store,
                                           self.auth, self.fanout, self.clock)
        self.lifetime = Lifetime(scheduler, self.publish, self._end_session, self.counters)
        self.connected_peak = 0
        self.flow = Backpressure(scheduler)
        self._handshake = Handshake(config, self.auth, scheduler, self.counters)
        self.peers: Peers | None = None  # the other nodes of a cluster (see _peers)

    # -- connections (the Host interface of Connection) ---------------------------------------

    def check_connect(self, packet: Connect) -> Refusal | None:
        return check_connect(self.config, self.auth.methods, packet)

    def assign_client_id(self) -> str:
        while True:
            client_id = "auto-" + os.urandom(8).hex()
            if client_id not in self.sessions:
                return client_id

    def authenticate(self, conn: Verdict, packet: Connect, client: ClientInfo,
                     by_certificate: bool, listener: ListenerConfig | None) -> None:
        self._handshake.authenticate(conn, packet, client, by_certificate, listener)

    def authorize_will(self, conn: Verdict, packet: Connect, client: ClientInfo,
                       reason: int | None) -> None:
        self._handshake.authorize_will(conn, packet, client, reason)

    def login_failed(self, peer: str) -> None:
        self._handshake.failed(peer)

    def login_delay(self, peer: str) -> float:
        """Seconds a login from ``peer`` (through another door: HTTP) waits first."""
        return self._handshake.delay(peer)

    def admit(self, conn: DeliveryTarget, packet: Connect,
              then: Callable[[Refusal | None], None]) -> None:
        """Before an authenticated client's session is looked for: in a cluster, its session
        may be on another node or in JetStream, and is brought here first. ``then`` is called
        (now, or once that is done) with None, or the reason to refuse the client."""
        if self.peers is None or not isinstance(conn, Connection):
            then(None)
            return
        self.peers.admit(conn.client_id, packet.clean_start, then)

    def connect(self, conn: DeliveryTarget, packet: Connect, client: ClientInfo,
                auth_method: str | None, auth_reply: bytes | None) -> Accepted | None:
        """Take over or create the session of an accepted client (MQTT 3.1.2.4, 3.1.4);
        None, touching nothing, if not even a CONNACK may be sent to it."""
        client_id = client.client_id
        ack_props = connack_properties(self.config, packet, client_id, auth_method, auth_reply)
        if connack_too_large(packet, ack_props):
            return None
        expiry = session_expiry(self.config, packet)
        existing = self.sessions.get(client_id)
        if existing is not None and existing.connection is not None:
            # MQTT-3.1.4-3: the session is taken over; the old connection is closed first.
            existing.connection.close(ReasonCode.SESSION_TAKEN_OVER, "session taken over")
            existing = self.sessions.get(client_id)
        if existing is not None and packet.clean_start:
            self._end_session(existing)  # MQTT-3.1.2-4
            existing = None
        if existing is None:
            session = self.sessions[client_id] = Session(client_id, expiry, self.limits,
                                                         self.counters, self.flow)
        else:
            session = existing
            self.lifetime.resumed(session)
            self.fanout.forget(session)  # its client may be another user now
        session.attach(conn, client, expiry)
        self.connections[conn] = None
        self.counters.connections_accepted += 1
        self.connected_peak = max(self.connected_peak, len(self.connections))
        will = will_of(packet, self.clock(), client_id)
        if will is not None:
            session.set_will(*will)
        session.keep_in(self.store if expiry and self.store.persistent else None)
        if self.peers is not None and isinstance(conn, Connection):
            self.peers.connected(client_id, conn, will)
        return negotiate(self.config, packet, session, existing is not None, expiry, ack_props)

    def attach_link(self, target: DeliveryTarget, client_id: str) -> Session:
        """The persistent session of a bridge link (made on first use, kept across restarts
        with persistence), attached to ``target`` and resending what was in flight."""
        session = self.sessions.get(client_id)
        if session is None:
            session = self.sessions[client_id] = Session(client_id, NEVER_EXPIRES, self.limits,
                                                         self.counters, self.flow)
        else:
            if session.connection is not None:  # a client took the link's id: it goes
                session.connection.close(ReasonCode.SESSION_TAKEN_OVER, "taken by a bridge")
            self.lifetime.resumed(session)
        session.keep_retained()
        # A cluster's store keeps a client id's session for the whole cluster, where every
        # node has its own link of that id: a link's session stays in memory there.
        store = None if self.store.streams else self.store
        # No client identity: a bridge is configured by the operator, and the ACL (written
        # for clients) neither filters what it forwards nor what it subscribes to.
        session.attach(target, None, NEVER_EXPIRES)
        self.fanout.forget(session)
        self.connections[target] = None
        session.keep_in(store if store is not None and store.persistent else None)
        session.resume(self.clock())
        return session

    def disconnected(self, conn: DeliveryTarget, session: Session, publish_will: bool) -> None:
        self.connections.pop(conn, None)
        if self.peers is not None and isinstance(conn, Connection):
            self.peers.disconnected(session.client_id, conn)
        if session.connection is conn:  # else it was taken over
            self.lifetime.disconnected(session, publish_will)

    def let_go(self, client_id: str) -> None:
        """In a cluster: the client's session goes on on another node. Its connection here,
        if any, is closed (MQTT-3.1.4-3); the session is dropped here, kept in its store, and
        its delayed will is not sent (its client is back, elsewhere: MQTT-3.1.3-9)."""
        session = self.sessions.get(client_id)
        if session is not None and session.connection is not None:
            session.connection.close(ReasonCode.SESSION_TAKEN_OVER,
                                     "session taken over on another node")
            session = self.sessions.get(client_id)  # ended, if it was not persistent
        if session is None:
            return
        self.lifetime.resumed(session)
        for sub in session.let_go():
            self.router.remove(sub)
        self.fanout.forget(session)
        del self.sessions[client_id]

    def _end_session(self, session: Session) -> None:
        self.lifetime.ending(session)
        for sub in session.end():
            self.router.remove(sub)
        self.fanout.forget(session)
        if self.sessions.get(session.client_id) is session:
            del self.sessions[session.client_id]

    # -- publishing -------------------------------------------------------------------------

    def publish_from_client(self, conn: Publisher, topic: str, packet: Publish) -> int:
        """Route a client's PUBLISH; the reason code for its PUBACK or PUBREC. A durable
        store holds the connection's next writes if the message had to be stored."""
        limit = self.config.message_size_limit
        if limit and len(packet.payload) > limit:
            log.warning("dropped: %d-byte message from client %s on %r is above "
                        "message_size_limit", len(packet.payload), conn.client_id, topic)
            self.counters.dropped["too_large"] += 1
            return ReasonCode.QUOTA_EXCEEDED
        if topic[0] == "$" and is_sys_topic(topic):
            # $SYS is the broker's to write (Mosquitto refuses it to clients as well).
            log.debug("denied: client %s may not publish to %r", conn.client_id, topic)
            self.counters.dropped["not_authorized"] += 1
            return ReasonCode.NOT_AUTHORIZED
        if (self.auth.authorizers and conn.client is not None
                and not self.auth.authorize(conn.client, Action.PUBLISH, topic)):
            # v5 publishers are told (0x87); v3 ones cannot be, and the message is dropped.
            log.debug("denied: client %s may not publish to %r", conn.client_id, topic)
            self.counters.dropped["not_authorized"] += 1
            return ReasonCode.NOT_AUTHORIZED
        message = Message.from_publish(topic, packet.payload, packet.qos, packet.retain,
                                       packet.properties, self.clock(), conn.client_id)
        if self.peers is not None and packet.qos == 2 and self.store.streams:
            session = self.sessions.get(conn.client_id)
            if session is not None and session.store is not None:
                # Exactly once even if this node dies before the client's session records
                # the packet id: the client sends it again through another node, and the
                # cluster keeps one of the two; every node, this one too, delivers that one.
                self.peers.forward(message, conn, packet.packet_id, looped=True)
                return ReasonCode.SUCCESS
        clustered = self.peers is not None
        if not packet.qos:  # nothing to acknowledge: the store is not consulted
            count = self.fanout.publish(message, clustered=clustered)
        else:
            store = self.store
            changes = store.changes
            count = self.fanout.publish(message, clustered=clustered)
            if store.changes != changes:
                store.touch(conn)
        if self.peers is not None:
            self.peers.forward(message, conn, packet.packet_id if packet.qos == 2 else 0)
            count = 1  # subscribers elsewhere cannot be counted here
        if self.flow.congested:
            self.flow.slow_down(conn)
        return ReasonCode.SUCCESS if count else ReasonCode.NO_MATCHING_SUBSCRIBERS

    def publish(self, message: Message) -> int:
        """Deliver ``message`` (from inside the broker: a will) to every matching
        subscription; no publisher is there to slow down."""
        count = self.fanout.publish(message, clustered=self.peers is not None)
        if self.peers is not None:
            self.peers.forward(message, None)
        self.flow.forget_congestion()
        return count

    def publish_from_peers(self, message: Message) -> int:
        """A message another node of the cluster routed: delivered here, not sent back."""
        count = self.fanout.publish(message, clustered=True)
        self.flow.forget_congestion()
        return count

    def deliver_to_group(self, message: Message, topic_filter: str, group: str) -> bool:
        """The cluster hands ``message`` to this node's members of ``$share/group/filter``:
        one of them gets it; False if none is here any more."""
        done = self.fanout.deliver_to_group(message, topic_filter, group)
        self.flow.forget_congestion()
        return done

    def deliver_to_session(self, session: Session, message: Message) -> bool:
        """In a cluster: a message a persistent session's store kept for it goes to it;
        False if none of its subscriptions wants it now."""
        done = self.fanout.deliver_to_session(session, message)
        self.flow.forget_congestion()
        return done

    def set_retained(self, message: Message) -> None:
        """In a cluster: the retained message of a topic (an empty payload deletes it), as
        the cluster's retained stream says, in its order."""
        self.retained.set(message)
        self.store.retained_changed(message.topic, message)

    def attach_peers(self, peers: Peers) -> list[tuple[str, str | None]]:
        """Join a cluster: messages go to ``peers`` too, and they follow which filters have
        local subscriptions. The filters that have some now."""
        self.peers = peers
        return self.router.watch_filters(peers.filter_added, peers.filter_removed)

    def publish_sys(self, topic: str, payload: bytes) -> None:
        """A ``$SYS`` value: retained in memory only (it is published anew every
        sys_interval; writing it to disk would only wear the disk) and never counted as a
        message dropped for want of subscribers."""
        message = Message(topic, payload, 0, True, NO_PROPERTIES, None, None)
        self.fanout.publish(message, system=True)
        self.flow.forget_congestion()

    def observe(self, observer: Callable[[Message], None] | None) -> None:
        """Every message routed from now on is shown to ``observer`` (see Fanout.observe)."""
        self.fanout.observe(observer)

    def gauges(self) -> Gauges:
        queued = queued_bytes = inflight = 0
        for session in self.sessions.values():
            if session.queue:
                queued += len(session.queue)
                queued_bytes += session.queued_bytes
            inflight += len(session.inflight)
        return Gauges(connected=len(self.connections), connected_peak=self.connected_peak,
                      sessions=len(self.sessions), subscriptions=self.router.count,
                      shared_subscriptions=self.router.shared_count,
                      retained_messages=self.retained.count,
                      retained_bytes=self.retained.bytes, queued_messages=queued,
                      queued_bytes=queued_bytes, inflight_messages=inflight)

    # -- subscriptions ----------------------------------------------------------------------

    def subscribe(self, session: Session, version: int, packet: Subscribe
                  ) -> tuple[list[int], Iterator[RetainedDelivery]]:
        answer = self.subscriptions.subscribe(session, version, packet)
        conn = session.connection
        if self.peers is not None and isinstance(conn, Connection):
            self.peers.settle(conn)  # the SUBACK waits until the other nodes know
        return answer

    def unsubscribe(self, session: Session, packet: Unsubscribe) -> list[int]:
        return self.subscriptions.unsubscribe(session, packet)

    def reload_auth(self) -> None:
        """SIGHUP: reload the plugins' files; cached access answers are forgotten."""
        self.auth.reload()
        self.fanout.forget()

    # -- restart and shutdown ---------------------------------------------------------------

    def restore(self, snapshot: Snapshot, wall_now: float) -> None:
        """Rebuild the persistent sessions, their queues and in-flight state, and the retained
        messages, from what the store kept; then let the time spent stopped take effect."""
        restored = rebuild(snapshot, self.clock(), wall_now, self.limits, self.counters,
                           self.flow, self.store)
        for session, _, _ in restored.sessions:
            self.sessions[session.client_id] = session
        for sub in restored.subscriptions:
            self.router.add(sub)
        for message in restored.retained:
            self.retained.set(message)
        for session, offline, was_connected in restored.sessions:
            self.lifetime.restored(session, offline, was_connected)

    def close_all(self, reason: ReasonCode, why: str) -> None:
        for conn in list(self.connections):
            conn.close(reason, why)
