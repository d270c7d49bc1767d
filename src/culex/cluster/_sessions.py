"""Persistent sessions kept in JetStream, so that a client resumes its session through any
node (docs/cluster.md, Sessions): the broker's store in a cluster.

Each persistent session has a record in the key-value bucket ``<PREFIX>_SESSIONS`` (who holds
it now, its expiry, its subscriptions, the QoS 2 messages in flight to its client with their
packet ids, the inbound QoS 2 packet ids awaiting PUBREL) and a durable consumer of the message
stream (``s-<hash of the client id>``) filtered by its subscriptions: the consumer is its queue.
The node holding a connected session pulls from it; a message is acknowledged to JetStream
once its client has completed it, so what a dead node had not completed comes again
(``redeliver_after``) to whichever node holds the session next. A QoS 2 message keeps its
packet id across nodes (the record is written before its PUBLISH goes out), so a client never
takes it for a new one.

Like the single-node store, writes are gathered per loop iteration and the replies that depend
on them (SUBACK, CONNACK, a QoS 2 PUBLISH or PUBREL, a PUBREC of an inbound QoS 2 message) wait
until they are written. Records are written with compare-and-set on their last revision: a
node that lost a session to another cannot overwrite it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import nats.js.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from ..persistence import (
    EMPTY,
    DeliveryState,
    Holder,
    SessionState,
    Snapshot,
    Store,
    StoredDelivery,
    SubscriptionState,
)
from ._feeding import Feed, Feeding, Held
from ._records import (
    consumer_name,
    record_of,
    subjects,
    threshold,
)
from ._resume import Resuming
from ._subjects import NOTHING, encode_level

if TYPE_CHECKING:

    from ..broker import Broker, Message
    from ..clusterconfig import ClusterConfig
    from ..observability import Counters

log = logging.getLogger("culex")

LEAVE_TIMEOUT = 3.0  # seconds a stopping node gives the records of its sessions



class SessionStore(Resuming, Feeding, Store):
    persistent = True
    durable = True
    streams = True
    description = "in the cluster's JetStream (sessions, retained and queued messages)"

    def __init__(self, config: ClusterConfig) -> None:
        self._config = config
        self._node = config.node
        self._m = config.prefix + ".m"
        self._stream = f"{config.prefix.upper()}_MSG"
        self._js: Any = None
        self._kv: Any = None
        self._nc: Any = None
        self._broker: Broker | None = None
        self._to_message: Callable[[str, bytes], Message | None] = lambda subject, data: None
        self._alive: Callable[[], list[str]] = list
        self._stored_so_far: Callable[[], Awaitable[None]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._counters: Counters | None = None
        # Records to write: client id -> the session (its record is made when written), the
        # record's bytes (made already: the session is going), or None (delete it).
        self._dirty: dict[str, SessionState | bytes | None] = {}
        self._touched: set[Holder] = set()
        self._batch = 1
        self._written = 0  # the last batch written
        self._writing = False
        self._scheduled = False
        self._waiters: list[asyncio.Future[None]] = []
        self._revisions: dict[str, int] = {}  # records this node holds: their revisions
        self._filters: dict[str, list[str]] = {}  # each consumer's filter subjects
        self._limits: dict[str, int] = {}  # each consumer's inactivity threshold (seconds)
        self._feeds: dict[str, Feed] = {}
        self._draining: dict[str, Feed] = {}  # stopped feeds, until nothing more comes to them
        # Their tasks, until what they held is handed back too (after they left _draining).
        self._ending: dict[str, asyncio.Task[None]] = {}
        self._held: dict[tuple[str, int], Held] = {}  # (client id, stream sequence)
        self._keys: dict[object, tuple[str, int]] = {}  # the held messages (Message objects)
        self._counts: dict[str, int] = {}  # held messages per session
        self._lost_ids: set[str] = set()  # sessions another node took while this one wrote
        self._completed: set[tuple[str, int]] = set()  # done before JetStream gave them again
        # Per session held here: its incarnation and its count of inbound QoS 2 messages,
        # which name those messages to JetStream (see inbound_id).
        self._inbound: dict[str, list[Any]] = {}
        self._leaving = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._acks: set[asyncio.Task[Any]] = set()  # acknowledgements on their way to JetStream

    # -- joining ---------------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop, counters: Counters | None = None) -> None:
        self._loop = loop
        self._counters = counters

    def bind(self, js: Any, nc: Any, kv: Any, broker: Broker,
             to_message: Callable[[str, bytes], Message | None],
             alive: Callable[[], list[str]],
             stored_so_far: Callable[[], Awaitable[None]]) -> None:
        """The cluster is joined: JetStream, its sessions bucket, and how the node turns a
        stream message into a broker message, knows which nodes are alive, and waits until
        what it forwarded is stored."""
        self._js, self._nc, self._kv, self._broker = js, nc, kv, broker
        self._to_message = to_message
        self._alive = alive
        self._stored_so_far = stored_so_far

    def load(self) -> Snapshot:
        return EMPTY  # sessions are read when their clients come (admit)

    # -- what the broker records --------------------------------------------------------------

    def touch(self, conn: Holder | None) -> None:
        if conn is not None:
            conn.hold(self._batch)
            self._touched.add(conn)
            self._changed()

    def restored(self, out: DeliveryState, stored: StoredDelivery) -> None:
        key = (stored.client_id, stored.message_id)  # the message id is its stream sequence
        held = self._held[key] = Held(None)
        held.taken = True
        self._counts[key[0]] = self._counts.get(key[0], 0) + 1
        self._keys[out.message] = key

    def inbound_id(self, client_id: str) -> str | None:
        """The JetStream message id of the next inbound QoS 2 message of ``client_id``'s
        session (None: not a session held here). The count is in the session's record,
        written only once the message is stored: a node that resumes the session after this
        one died before writing it names the client's resent message the same, and
        JetStream keeps the first only."""
        entry = self._inbound.get(client_id)
        if entry is None:
            return None
        entry[1] += 1
        name = hashlib.sha256(client_id.encode()).hexdigest()[:24]
        return f"{name}-{entry[0]}-{entry[1]}"

    def session_saved(self, session: SessionState) -> None:
        if session.client_id not in self._inbound:
            self._inbound[session.client_id] = [secrets.token_hex(6), 0]
        self._dirty[session.client_id] = session
        self._changed()
        self.touch(session.connection)
        self._follow(session)

    def session_adopted(self, session: SessionState) -> None:
        self.session_saved(session)

    def session_forgotten(self, session: SessionState) -> None:
        self._inbound.pop(session.client_id, None)
        self._stop_feed(session.client_id)
        self._drop_held(session.client_id, nak=False)
        self._dirty[session.client_id] = None
        self._changed()

    def session_released(self, session: SessionState) -> None:
        client_id = session.client_id
        self._stop_feed(client_id)
        if client_id in self._lost_ids:  # the record is another node's already
            self._lost_ids.discard(client_id)
            self._dirty.pop(client_id, None)
            self._drop_held(client_id, nak=True)
            return
        # The record first: it names the QoS 2 messages in flight by what is held of them.
        self._dirty[client_id] = self._record(session, None)
        self._drop_held(client_id, nak=True)
        self._inbound.pop(client_id, None)
        self._changed()

    def subscription_saved(self, session: SessionState, sub: SubscriptionState) -> None:
        self.session_saved(session)

    def subscription_removed(self, session: SessionState, topic_filter: str) -> None:
        self._dirty[session.client_id] = session
        self._changed()

    def outgoing_saved(self, session: SessionState, out: DeliveryState) -> None:
        key = self._keys.get(out.message)
        if key is None:
            return  # not from the stream (a retained message on subscribe): here only
        self._held[key].taken = True
        if out.qos == 2 and out.packet_id:
            # Its packet id goes into the record before the PUBLISH (or PUBREL) goes out:
            # resent by another node under another id, it would reach the client twice.
            self.session_saved(session)

    def outgoing_removed(self, session: SessionState, out: DeliveryState) -> None:
        key = self._keys.pop(out.message, None)
        if key is None:
            return
        self._done(key)
        if out.qos == 2:
            self._dirty[session.client_id] = session
            self._changed()
        feed = self._feeds.get(key[0])
        if feed is not None:
            feed.room.set()

    def release_awaited(self, session: SessionState, packet_id: int, awaited: bool) -> None:
        # Inbound QoS 2: a packet id awaiting PUBREL is known to the node that resumes the
        # session, so the client's resent PUBLISH is not taken for a new message.
        self.session_saved(session)

    # -- writing records ------------------------------------------------------------------------

    def _changed(self) -> None:
        self.changes += 1
        if not self._scheduled and self._loop is not None:
            self._scheduled = True
            self._loop.call_soon(self._hand_off)

    def _hand_off(self) -> None:
        self._scheduled = False
        if self._writing or self._loop is None:
            return
        if not self._dirty and not self._touched:
            self._wake()
            return
        jobs: list[tuple[str, bytes | None, list[str] | None, int]] = []
        for client_id, item in self._dirty.items():
            if item is None:
                jobs.append((client_id, None, None, 0))
            elif isinstance(item, bytes):
                jobs.append((client_id, item, None, 0))
            else:
                filters = subjects(self._m, [[f] for f in item.subscriptions])
                jobs.append((client_id, self._record(item, self._node), filters,
                             threshold(item.expiry_interval)))
        self._dirty = {}
        touched, self._touched = self._touched, set()
        batch = self._batch
        self._batch += 1
        self._writing = True
        self._loop.create_task(self._write(batch, jobs, touched))

    async def _write(self, batch: int, jobs: list[tuple[str, bytes | None, list[str] | None,
                                                         int]],
                     touched: set[Holder]) -> None:
        started = time.monotonic()
        try:
            if self._stored_so_far is not None:
                # A record says what the messages published meanwhile made of the session
                # (an inbound QoS 2 packet id awaiting PUBREL): never before they are stored.
                await self._stored_so_far()
            await asyncio.gather(*(self._write_one(*job) for job in jobs))
        finally:
            self._writing = False
            self._written = batch
            if self._counters is not None:
                self._counters.commit(time.monotonic() - started)
            for conn in touched:
                conn.release(batch)
            self._wake()  # each waiter looks again at what it waits for
            if self._dirty or self._touched:
                self._hand_off()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _write_one(self, client_id: str, value: bytes | None, filters: list[str] | None,
                         threshold: int) -> None:
        key = encode_level(client_id)
        delay = 0.05
        while True:
            try:
                if value is None:
                    await self._delete(client_id)
                    return
                if filters is not None and (filters != self._filters.get(client_id)
                                            or threshold != self._limits.get(client_id)):
                    await self._consumer(client_id, filters, threshold)
                revision = self._revisions.get(client_id)
                if revision is None:
                    revision = await self._kv.create(key, value)
                else:
                    revision = await self._kv.update(key, value, last=revision)
                if filters is None:  # let go: the record is another node's from now on
                    self._drop_state(client_id)
                else:
                    self._revisions[client_id] = revision
                return
            except nats.js.errors.KeyWrongLastSequenceError:
                self._lost(client_id)
                return
            except Exception as exc:  # NATS away for a moment: what waits, waits longer
                if self._leaving and delay > 1:
                    return
                log.warning("cluster: cannot write the session of %r (%s); retrying",
                            client_id, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _delete(self, client_id: str) -> None:
        revision = self._revisions.get(client_id)
        self._drop_state(client_id)
        with contextlib.suppress(nats.js.errors.KeyWrongLastSequenceError):
            await self._forget(client_id, revision)

    def _drop_state(self, client_id: str) -> None:
        """What this node kept of a session's record and consumer: not its any more."""
        for kept in (self._revisions, self._filters, self._limits, self._inbound):
            kept.pop(client_id, None)

    async def _consumer(self, client_id: str, filters: list[str], threshold: int) -> None:
        await self._js.add_consumer(self._stream, ConsumerConfig(
            durable_name=consumer_name(client_id), ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.NEW, ack_wait=self._config.redeliver_after,
            max_ack_pending=self._window(), filter_subjects=filters or [f"{self._m}.{NOTHING}"],
            inactive_threshold=threshold or None))
        self._filters[client_id] = filters
        self._limits[client_id] = threshold

    def _lost(self, client_id: str) -> None:
        """Another node took the session meanwhile: it is theirs."""
        log.warning("cluster: the session of %r was taken by another node", client_id)
        self._drop_state(client_id)
        if self._broker is not None and client_id in self._broker.sessions:
            self._lost_ids.add(client_id)
            self._broker.let_go(client_id)

    def _record(self, session: SessionState, holder: str | None, left: bool = False) -> bytes:
        return record_of(session, holder, self._keys, self._clock(), left,
                         self._inbound.get(session.client_id))

    def _clock(self) -> float:
        return self._loop.time() if self._loop is not None else time.monotonic()

    # -- lifetime -------------------------------------------------------------------------------

    async def flush(self) -> None:
        if self._loop is None or self._js is None or not self._nc.is_connected:
            return  # nothing can be written now; what waits for it waits for NATS
        while self._writing or self._dirty or self._touched or self._scheduled:
            waiter = self._loop.create_future()
            self._waiters.append(waiter)
            if not self._writing:
                self._hand_off()
            await waiter

    async def _written_through(self, batch: int) -> None:
        """Until ``batch`` is written (not what others change meanwhile, as flush waits for)."""
        assert self._loop is not None
        while self._written < batch:
            waiter = self._loop.create_future()
            self._waiters.append(waiter)
            if not self._writing and not self._scheduled:
                self._hand_off()
            await waiter

    async def leave(self) -> None:
        """The node stops: its sessions are let go (held messages handed back to JetStream,
        records marked as left), so that another node resumes them at once and the
        survivors take them (their wills and expiry go on)."""
        self._leaving = True
        broker = self._broker
        for client_id in list(self._feeds):
            self._stop_feed(client_id)
        ending = list(self._ending.values())
        for client_id in list(self._revisions):
            session = broker.sessions.get(client_id) if broker is not None else None
            if session is not None:  # (before what is held of it is dropped: see above)
                self._dirty[client_id] = self._record(session, self._node, left=True)
            self._drop_held(client_id, nak=True)
        self._changed()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.flush(), LEAVE_TIMEOUT)
        await self._handed_back(ending, 1.0)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1.0)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.flush(), 2.0)

