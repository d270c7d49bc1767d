"""This node's link to the others, through NATS (docs/cluster.md): the broker's ``Peers``.

Out: every message the broker routes is sent once, QoS 0 as a core NATS message, QoS 1 and 2
into the JetStream stream, the publisher's acknowledgement held until JetStream has stored it.
In: core subscriptions and one durable JetStream consumer, both following the filters of this
node's subscriptions; what arrives is routed to the local sessions only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import nats
import nats.errors
import nats.js.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from ..broker import Message
from ..protocol import ReasonCode
from ._envelope import Envelope, EnvelopeError, decode, encode
from ._fetch import batches
from ._handled import Handled
from ._liveness import Liveness, will_record
from ._owners import Owners
from ._patience import patiently
from ._sessions import SessionStore
from ._shared import SharedGroups
from ._storing import Storing
from ._subjects import NOTHING, filter_subjects, subject_topic, topic_subject
from ._tickets import Tickets

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

    from ..broker import Broker
    from ..broker._peers import PeerHolder
    from ..clusterconfig import ClusterConfig

log = logging.getLogger("culex")

FETCH_BATCH = 256
TOMBSTONE_TTL = 86400.0  # seconds a retained message's deletion is kept in its stream
class ClusterNode(Storing):
    def __init__(self, config: ClusterConfig, broker: Broker) -> None:
        self.config = config
        self._broker = broker
        self._counters = broker.counters
        self._node = config.node
        self._epoch = int.from_bytes(os.urandom(4), "big")
        self._seq = 0
        self._q0 = config.prefix + ".q0"
        self._m = config.prefix + ".m"
        self._r = config.prefix + ".r"
        self._stream = f"{config.prefix.upper()}_MSG"
        self._retained_stream = f"{config.prefix.upper()}_RETAINED"
        self._consumer = f"node-{config.node}"
        self._nc: Any = None
        self._js: Any = None
        self._tickets = Tickets()
        # (subject, data, publisher, ticket, seconds JetStream keeps it (None: no limit))
        # (subject, data, publisher, ticket, seconds JetStream keeps it, JetStream message id)
        self._outbox: list[tuple[str, bytes, PeerHolder | None, int, float | None,
                                 str | None]] = []
        self._flushing = False
        self._flushed: list[asyncio.Future[None]] = []  # wait for the outbox to be sent
        self._pending_acks: dict[asyncio.Future[Any], tuple[PeerHolder | None, int, float]] = {}
        # QoS 2 publishers' packet ids, by ticket, while JetStream has not stored the message.
        self._received: dict[tuple[PeerHolder, int], int] = {}
        # Retained messages: the stream sequence applied here, and the publishers whose
        # acknowledgement waits until their retained message is (read your own writes).
        self._retained_seq = 0
        self._retained_waiting: list[tuple[int, PeerHolder, int]] = []
        self._caught_up: asyncio.Event | None = None
        # Interest: the local filters, and what NATS has been told of them; the local shared
        # groups.
        self._filters: set[str] = set()
        self._core: dict[str, Subscription] = {}
        self._shared = SharedGroups(self._q0, self._m, self._stream, self._to_group,
                                    lambda: self._stopping, config.redeliver_after)
        self._wanted = 0  # generation of the filters
        self._applied = 0  # generation NATS knows
        self._settling: list[tuple[int, PeerHolder, int]] = []
        self._applying: asyncio.Task[None] | None = None
        self._last_seen: dict[tuple[str, int], int] = {}  # QoS 0 de-duplication
        self._tasks: list[asyncio.Task[None]] = []
        self._owners = Owners(config.node, self._tickets, self._taken_over)
        self.linked = False  # to a NATS server, now
        self._stopping = False
        # Persistent sessions live in JetStream when the broker's store is the cluster's.
        self._sessions = broker.store if isinstance(broker.store, SessionStore) else None
        self.liveness = Liveness(config.node, self._owners, broker.publish, broker.clock,
                                 self._sessions.adopt_soon if self._sessions else None)

    # -- start and stop ------------------------------------------------------------------------

    async def start(self) -> None:
        config = self.config
        options: dict[str, Any] = {
            "servers": config.servers, "name": f"culex {config.node}", "no_echo": True,
            "max_reconnect_attempts": -1, "reconnect_time_wait": 0.5, "connect_timeout": 5,
            "disconnected_cb": self._disconnected, "reconnected_cb": self._reconnected,
            "error_cb": self._error}
        if config.user is not None:
            options.update(user=config.user, password=config.password)
        if config.token is not None:
            options["token"] = config.token
        if config.credentials is not None:
            options["user_credentials"] = config.credentials
        if config.tls_ca is not None or config.tls_cert is not None:
            context = ssl.create_default_context(cafile=config.tls_ca)
            if config.tls_cert is not None:
                context.load_cert_chain(config.tls_cert, config.tls_key)
            options["tls"] = context
        self._nc = await nats.connect(**options)
        self._js = self._nc.jetstream()
        self._shared.start(await nats.connect(**{**options, "no_echo": False,
                                                 "name": f"culex {config.node} shared"}),
                           self._js)
        self.linked = True
        js = self._js
        await patiently(lambda: js.add_stream(StreamConfig(
            name=self._stream, subjects=[self._m + ".>"], storage=StorageType.FILE,
            num_replicas=config.replicas, max_age=config.message_retention)))
        # One message kept per topic: the retained one, or an empty one for a deletion.
        await patiently(lambda: js.add_stream(StreamConfig(
            name=self._retained_stream, subjects=[self._r + ".>"], storage=StorageType.FILE,
            num_replicas=config.replicas, max_msgs_per_subject=1, allow_msg_ttl=True)))
        await patiently(self._follow_retained)

        def bucket(name: str) -> Any:
            return patiently(lambda: js.create_key_value(
                bucket=f"{config.prefix.upper()}_{name}", history=1, replicas=config.replicas))

        # Who owns each client id: one connection in the whole cluster.
        await self._owners.start(await bucket("CLIENTS"))
        await self.liveness.start(await bucket("NODES"))
        if self._sessions is not None:
            self._sessions.bind(js, self._nc, await bucket("SESSIONS"), self._broker,
                                self._stored_message, lambda: self.liveness.alive,
                                self.stored_so_far)
            await self._sessions.serve_releases()
        for topic_filter, group in self._broker.attach_peers(self):
            if group is None:
                self._filters.add(topic_filter)
            else:
                self._shared.wanted.add((topic_filter, group))
        self._wanted += 1
        await patiently(self._apply)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._consume()), loop.create_task(self._watch())]
        assert self._caught_up is not None
        await asyncio.wait_for(self._caught_up.wait(), 60)  # every retained message is here
        log.info("cluster: node %s joined through %s (%d replicas)", config.node,
                 self._nc.connected_url.netloc if self._nc.connected_url else "?",
                 config.replicas)

    async def stop(self) -> None:
        self._stopping = True
        if self._sessions is not None and self._nc is not None and not self._nc.is_closed:
            await self._sessions.leave()
        await self._owners.stop()
        await self.liveness.stop()
        tasks = [*self._tasks, *self._shared.tasks.values()]
        for task in tasks:
            task.cancel()
        if tasks:
            # A task inside the NATS client may take a cancellation for a time-out and go
            # on: the loops check _stopping too, and nobody waits for them for long.
            await asyncio.wait(tasks, timeout=2.0)
        if self._nc is not None and not self._nc.is_closed:
            # What was routed goes out, and JetStream's answers come back, for a moment.
            deadline = time.monotonic() + 2.0
            while (self._outbox or self._flushing or self._pending_acks) \
                    and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            with contextlib.suppress(Exception):
                await self._nc.flush(1)
            with contextlib.suppress(Exception):  # NATS gone: its client may not close cleanly
                await self._nc.close()
        with contextlib.suppress(Exception):
            await self._shared.close()
        self.linked = False

    async def _disconnected(self) -> None:
        self.linked = False
        if not self._stopping:
            log.warning("cluster: lost NATS; reconnecting")

    async def _reconnected(self) -> None:
        self.linked = True
        log.info("cluster: NATS back at %s", self._nc.connected_url.netloc)

    async def _error(self, exc: Exception) -> None:
        log.warning("cluster: NATS: %s", exc)

    # -- out: Peers.forward ----------------------------------------------------------------------

    def forward(self, message: Message, publisher: PeerHolder | None,
                packet_id: int = 0, looped: bool = False) -> None:
        qos = message.qos
        subject = topic_subject(self._m if qos else self._q0, message.topic)
        if len(subject) > self.config.max_subject:
            log.warning("cluster: topic %r is too long for a NATS subject; not sent to the "
                        "other nodes", message.topic[:80])
            self._counters.dropped["too_large"] += 1
            return
        if not qos:
            self._seq += 1
        expiry = None
        if message.expiry_at is not None:
            expiry = max(0.0, message.expiry_at - self._broker.clock())
        # QoS 0: the counter of de-duplication; QoS 1 and 2: 1 if this node delivers it from
        # the stream as well (looped).
        data = encode(Envelope(self._node, self._epoch, self._seq if not qos else int(looped),
                               qos, message.retain, message.sender, expiry,
                               message.properties, message.payload))
        msg_id = None
        if looped and self._sessions is not None and message.sender is not None:
            # The same id if its publisher sends it again through another node after this
            # one died: JetStream keeps one (its duplicate window, 2 minutes).
            msg_id = self._sessions.inbound_id(message.sender)
        ticket = 0
        if qos and publisher is not None:
            ticket = self._tickets.issue(publisher)
            if packet_id:
                self._received[publisher, ticket] = packet_id
        self._outbox.append((subject, data, publisher, ticket, None, msg_id))
        if message.retain:
            # Into the retained stream too; the publisher's acknowledgement also waits until
            # this node holds it as the topic's retained message. JetStream forgets it when
            # it expires (a node that starts later must not get it), and a deletion after a
            # while (every node then knows it).
            ticket = self._tickets.issue(publisher) if qos and publisher is not None else 0
            if ticket and packet_id and publisher is not None:
                self._received[publisher, ticket] = packet_id
            ttl = TOMBSTONE_TTL if not message.payload else expiry
            self._outbox.append((topic_subject(self._r, message.topic), data, publisher,
                                 ticket, ttl, msg_id))
        self._counters.peer_messages_sent += 1
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        """Send what this loop iteration routed, in order."""
        try:
            while self._outbox:
                batch, self._outbox = self._outbox, []
                for subject, data, publisher, ticket, ttl, msg_id in batch:
                    if not subject.startswith(self._q0):
                        await self._publish_stored(subject, data, publisher, ticket, ttl,
                                                   msg_id)
                    else:
                        try:
                            await self._nc.publish(subject, data)
                        except Exception as exc:  # disconnected and the buffer full
                            log.debug("cluster: QoS 0 message not sent: %s", exc)
                            self._counters.dropped["queue_full"] += 1
        finally:
            self._flushing = False
            waiting, self._flushed = self._flushed, []
            for waiter in waiting:
                if not waiter.done():
                    waiter.set_result(None)

    def describe(self) -> dict[str, object]:
        """This node and the cluster as it sees them: for $SYS, /metrics and the dashboard."""
        nodes = sorted({self._node, *self.liveness.alive})
        return {"node": self._node, "connected": self.linked, "nodes": nodes,
                "sent": self._counters.peer_messages_sent,
                "received": self._counters.peer_messages_received}

    # -- client ids: Peers.connected, disconnected --------------------------------------------

    def connected(self, client_id: str, conn: PeerHolder,
                  will: tuple[Message, int, int | None] | None) -> None:
        self._owners.connected(client_id, conn, will_record(self._node, will))

    def disconnected(self, client_id: str, conn: PeerHolder) -> None:
        self._owners.disconnected(client_id, conn)

    # -- sessions: Peers.admit -------------------------------------------------------------------

    def admit(self, client_id: str, clean_start: bool,
              then: Callable[[tuple[int, str] | None], None]) -> None:
        if self._sessions is None:
            then(None)
        else:
            self._sessions.admit_then(client_id, clean_start, then)

    def _stored_message(self, subject: str, data: bytes) -> Message | None:
        """A message of the stream, as the broker holds it (None: not culex's)."""
        try:
            envelope = decode(data)
            topic = subject_topic(self._m, subject)
        except ValueError as exc:
            log.warning("cluster: dropped a message on %s: %s", subject, exc)
            return None
        if envelope.node != self._node:  # a session's queue has this node's messages too
            self._counters.peer_messages_received += 1
        return self._message(topic, envelope)

    @staticmethod
    def _taken_over(conn: PeerHolder, taken: bool) -> None:
        if taken:
            conn.close(ReasonCode.SESSION_TAKEN_OVER, "session taken over on another node")
        else:
            conn.close(ReasonCode.SERVER_BUSY, "the cluster could not register the client id")

    # -- interest: Peers.filter_added, filter_removed, settle ---------------------------------

    def filter_added(self, topic_filter: str, group: str | None) -> None:
        if group is None:
            self._filters.add(topic_filter)
        else:
            self._shared.wanted.add((topic_filter, group))
        self._changed()

    def filter_removed(self, topic_filter: str, group: str | None) -> None:
        if group is None:
            self._filters.discard(topic_filter)
        else:
            self._shared.wanted.discard((topic_filter, group))
        self._changed()

    def _changed(self) -> None:
        self._wanted += 1
        if self._applying is None and self._js is not None:
            self._applying = asyncio.get_running_loop().create_task(self._apply_soon())

    def settle(self, conn: PeerHolder) -> None:
        if self._applied < self._wanted:
            self._settling.append((self._wanted, conn, self._tickets.issue(conn)))

    async def _apply_soon(self) -> None:
        try:
            await self._apply()
        finally:
            self._applying = None
            if self._applied < self._wanted:
                self._changed()

    async def _apply(self) -> None:
        """Tell NATS the filters of this node: core subscriptions for QoS 0, the consumer's
        filter subjects for QoS 1 and 2; then release the SUBACKs that waited for it."""
        while self._applied < self._wanted:
            generation = self._wanted
            q0 = {subject for f in self._filters for subject in filter_subjects(self._q0, f)}
            stored = sorted({subject for f in self._filters
                             for subject in filter_subjects(self._m, f)})
            for subject in set(self._core) - q0:
                await self._core.pop(subject).unsubscribe()
            for subject in sorted(q0 - set(self._core)):
                self._core[subject] = await self._nc.subscribe(subject, cb=self._on_core)
            await self._js.add_consumer(self._stream, ConsumerConfig(
                durable_name=self._consumer, ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.NEW, max_ack_pending=10_000,
                ack_wait=self.config.redeliver_after,
                filter_subjects=stored or [f"{self._m}.{NOTHING}"]))
            await self._shared.apply()
            await self._nc.flush()
            await self._shared.flush()
            self._applied = generation
            waiting, self._settling = self._settling, []
            for wanted, conn, ticket in waiting:
                if wanted <= generation:
                    self._tickets.done(conn, ticket)
                else:
                    self._settling.append((wanted, conn, ticket))

    def _to_group(self, topic: str, envelope: Envelope, group: tuple[str, str]) -> bool:
        self._counters.peer_messages_received += 1
        return self._broker.deliver_to_group(self._message(topic, envelope), *group)

    # -- in ------------------------------------------------------------------------------------

    async def _on_core(self, msg: Msg) -> None:
        try:
            envelope = decode(msg.data)
        except EnvelopeError as exc:
            log.warning("cluster: dropped a message on %s: %s", msg.subject, exc)
            return
        key = (envelope.node, envelope.epoch)
        if envelope.seq <= self._last_seen.get(key, 0):
            return  # the same message through another of this node's subscriptions
        self._last_seen[key] = envelope.seq
        self._deliver(self._q0, msg.subject, envelope)

    async def _consume(self) -> None:
        store = self._broker.store
        handled = Handled(self._js, self._stream, self._consumer, 1.0)
        async for messages in batches(self._nc, self._stream, self._consumer, FETCH_BATCH,
                                      lambda: self._stopping, "from JetStream"):
            changes = store.changes
            for msg in messages:
                if handled.again(msg):
                    continue  # delivered already; its lost acknowledgement is sent again
                handled.add(msg)
                try:
                    envelope = decode(msg.data)
                except EnvelopeError as exc:
                    log.warning("cluster: dropped a message on %s: %s", msg.subject, exc)
                    continue
                # This node delivered its own already, unless looped (exactly-once QoS 2).
                if envelope.node != self._node or envelope.seq:
                    self._deliver(self._m, msg.subject, envelope)
            if store.changes != changes:
                await store.flush()  # acknowledged to JetStream once safe here too
            for msg in messages:
                await msg.ack()
            handled.prune_soon()

    async def _follow_retained(self) -> None:
        """Every retained message, the last of each topic first, then each as it comes, in
        the stream's order: the only way retained messages enter this node's tree."""
        self._caught_up = asyncio.Event()
        info = await self._js.stream_info(self._retained_stream)
        if not info.state.messages:
            self._caught_up.set()
        await self._js.subscribe(self._r + ".>", stream=self._retained_stream,
                                 cb=self._on_retained, ordered_consumer=True,
                                 deliver_policy=DeliverPolicy.LAST_PER_SUBJECT)

    async def _on_retained(self, msg: Msg) -> None:
        metadata = msg.metadata
        try:
            envelope = decode(msg.data)
            topic = subject_topic(self._r, msg.subject)
        except ValueError as exc:
            log.warning("cluster: dropped a retained message on %s: %s", msg.subject, exc)
        else:
            self._broker.set_retained(self._message(topic, envelope))  # its retain flag set
        self._retained_seq = max(self._retained_seq, metadata.sequence.stream)
        if metadata.num_pending == 0 and self._caught_up is not None:
            self._caught_up.set()
        if self._retained_waiting:
            waiting, self._retained_waiting = self._retained_waiting, []
            for seq, publisher, ticket in waiting:
                if seq <= self._retained_seq:
                    self._tickets.done(publisher, ticket)
                else:
                    self._retained_waiting.append((seq, publisher, ticket))

    def _deliver(self, prefix: str, subject: str, envelope: Envelope) -> None:
        try:
            topic = subject_topic(prefix, subject)
        except ValueError:
            log.warning("cluster: dropped a message on %s: not a culex subject", subject)
            return
        if envelope.node != self._node:  # else a looped QoS 2 message of its own
            self._counters.peer_messages_received += 1
        self._broker.publish_from_peers(self._message(topic, envelope))

    def _message(self, topic: str, envelope: Envelope) -> Message:
        expiry_at = None if envelope.expiry is None else self._broker.clock() + envelope.expiry
        return Message(topic, envelope.payload, envelope.qos, envelope.retain,
                       envelope.properties, expiry_at, envelope.sender)
