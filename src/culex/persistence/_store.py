"""The storage interface: what the broker tells a store, and what a store gives back at start.

The broker's state lives in memory; a store is told about each change of what must outlive the
process (persistent sessions, their subscriptions, queued and in-flight messages, inbound QoS 2
packet ids awaiting PUBREL, retained messages, pending wills) and writes it behind. This base
class keeps nothing: it is the store of ``--no-persistence``, and sessions are never given it,
so the broker's fast path costs nothing when persistence is off.

A *durable* store makes the broker hold back what it writes to a client whose state changed
(``touch``) until that change is on disk: a PUBACK, PUBREC or PUBCOMP, a SUBACK, a CONNACK,
a QoS 2 PUBLISH or PUBREL carrying a packet id the store must remember.

The store reads the broker's objects through the protocols below, which say what it needs of
them; it never imports the broker (which imports this package) and never writes their fields:
its bookkeeping (row ids, reference counts, which batch wrote what) stays in its own records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    import asyncio

    from ..auth import ClientInfo
    from ..observability import Counters
    from ..protocol import Payload, Properties


class Holder(Protocol):
    """What a durable store needs of a client connection: to hold its writes until a batch of
    changes is on disk, and to let them go (in order) once it is."""

    def hold(self, batch: int) -> None:
        """From now on, writes wait until the store has committed ``batch``."""

    def release(self, batch: int) -> None:
        """``batch`` is committed: what waited for it goes out."""

    def waiting_for(self) -> int:
        """The first batch a held write waits for (0: none is held)."""
        ...


class MessageState(Protocol):
    @property
    def topic(self) -> str: ...
    @property
    def payload(self) -> Payload: ...
    @property
    def qos(self) -> int: ...
    @property
    def retain(self) -> bool: ...
    @property
    def properties(self) -> Properties: ...
    @property
    def expiry_at(self) -> float | None:
        """On the broker's monotonic clock."""


class DeliveryState(Protocol):
    """One message on its way to one session (queued, or in flight with a packet id)."""

    @property
    def message(self) -> MessageState: ...
    @property
    def qos(self) -> int: ...
    @property
    def retain(self) -> bool: ...
    @property
    def sub_ids(self) -> tuple[int, ...]: ...
    @property
    def packet_id(self) -> int: ...
    @property
    def state(self) -> int: ...


class SubscriptionState(Protocol):
    @property
    def topic_filter(self) -> str: ...
    @property
    def qos(self) -> int: ...
    @property
    def no_local(self) -> bool: ...
    @property
    def retain_as_published(self) -> bool: ...
    @property
    def retain_handling(self) -> int: ...
    @property
    def identifier(self) -> int | None: ...


class SessionState(Protocol):
    @property
    def client_id(self) -> str: ...
    @property
    def expiry_interval(self) -> int: ...
    @property
    def disconnected_at(self) -> float | None: ...
    @property
    def client(self) -> ClientInfo | None: ...
    @property
    def connection(self) -> Holder | None: ...
    @property
    def will(self) -> MessageState | None: ...
    @property
    def will_delay(self) -> int: ...
    @property
    def will_expiry(self) -> int | None: ...
    @property
    def subscriptions(self) -> Mapping[str, SubscriptionState]: ...
    @property
    def inflight(self) -> Mapping[int, DeliveryState]: ...
    @property
    def queue(self) -> Iterable[DeliveryState] | None: ...
    @property
    def awaiting_rel(self) -> Iterable[int] | None: ...


class StoreError(Exception):
    """The store cannot be used at all (its directory is unusable or in use elsewhere)."""


class StoredMessage(NamedTuple):
    topic: str
    payload: bytes
    qos: int
    retain: bool
    properties: Properties
    expires_at: float | None  # wall clock (time.time())


class StoredWill(NamedTuple):
    message: StoredMessage  # expires_at unused: the will's expiry runs from its publication
    delay: int
    expiry: int | None


class StoredSession(NamedTuple):
    client_id: str
    expiry_interval: int
    disconnected_at: float | None  # wall clock; None if it was connected when the broker stopped
    username: str | None
    cert_subject: str | None
    protocol_version: int
    will: StoredWill | None


class StoredSubscription(NamedTuple):
    client_id: str
    topic_filter: str
    qos: int
    no_local: bool
    retain_as_published: bool
    retain_handling: int
    identifier: int | None


class StoredDelivery(NamedTuple):
    seq: int  # the order messages were given to the session in
    client_id: str
    message_id: int
    qos: int
    retain: bool
    sub_ids: tuple[int, ...]
    packet_id: int  # 0 while queued; set once the PUBLISH was sent
    state: int  # AWAITING_ACK or AWAITING_COMP


class Snapshot(NamedTuple):
    sessions: list[StoredSession]
    subscriptions: list[StoredSubscription]
    messages: dict[int, StoredMessage]
    deliveries: list[StoredDelivery]  # in seq order
    awaiting_release: list[tuple[str, int]]
    retained: list[StoredMessage]


EMPTY = Snapshot([], [], {}, [], [], [])


class Store:
    """Keeps nothing (``--no-persistence``); the interface the broker calls."""

    persistent = False  # whether sessions with an expiry interval are written here
    durable = False  # whether replies wait for the changes they follow to be on disk
    description = "in memory only (--no-persistence): nothing survives a restart"
    # Bumped on every change recorded; a connection compares it around a PUBLISH to know
    # whether its acknowledgement must wait for a commit.
    changes = 0
    # Whether the store feeds its sessions their QoS 1 and 2 messages itself (a cluster's,
    # from JetStream): the router then leaves those to it.
    streams = False

    def load(self) -> Snapshot:
        return EMPTY

    def trouble(self) -> str | None:
        """Why the store cannot take writes now (None: it can)."""
        return None

    def start(self, loop: asyncio.AbstractEventLoop, counters: Counters | None = None) -> None:
        """Begin writing behind, on ``loop``; commits are counted in ``counters``."""

    def touch(self, conn: Holder | None) -> None:
        """``conn``'s next writes wait until what was just recorded is durable."""

    def restored(self, out: DeliveryState, stored: StoredDelivery) -> None:
        """At start: ``out`` is the delivery ``stored`` was read from (and is on disk)."""

    # -- what the broker records --------------------------------------------------------------

    def session_saved(self, session: SessionState) -> None:
        """The session's own fields changed (expiry, connection state, will)."""

    def session_adopted(self, session: SessionState) -> None:
        """A session became persistent: write it whole."""

    def session_forgotten(self, session: SessionState) -> None:
        """The session ended, or stopped being persistent: remove it whole."""

    def session_released(self, session: SessionState) -> None:
        """The session goes on elsewhere (another node of a cluster): keep it, let it go."""

    def subscription_saved(self, session: SessionState, sub: SubscriptionState) -> None: ...

    def subscription_removed(self, session: SessionState, topic_filter: str) -> None: ...

    def outgoing_saved(self, session: SessionState, out: DeliveryState) -> None:
        """A message was given to the session, or its packet id or state changed."""

    def outgoing_removed(self, session: SessionState, out: DeliveryState) -> None: ...

    def release_awaited(self, session: SessionState, packet_id: int, awaited: bool) -> None:
        """An inbound QoS 2 packet id now awaits its PUBREL, or no longer does."""

    def retained_changed(self, topic: str, message: MessageState | None) -> None: ...

    # -- lifetime -------------------------------------------------------------------------------

    async def flush(self) -> None:
        """Wait until everything recorded so far is durable."""

    async def close(self) -> None:
        """Write what is pending and close."""
