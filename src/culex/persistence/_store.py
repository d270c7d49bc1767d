"""The storage interface: what the broker tells a store, and what a store gives back at start.

The broker's state lives in memory; a store is told about each change of what must outlive the
process (persistent sessions, their subscriptions, queued and in-flight messages, inbound QoS 2
packet ids awaiting PUBREL, retained messages, pending wills) and writes it behind. This base
class keeps nothing: it is the store of ``--no-persistence``, and sessions are never given it,
so the broker's fast path costs nothing when persistence is off.

A *durable* store makes the broker hold back what it writes to a client whose state changed
(``touch``) until that change is on disk: a PUBACK, PUBREC or PUBCOMP, a SUBACK, a CONNACK,
a QoS 2 PUBLISH or PUBREL carrying a packet id the store must remember.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import asyncio

    from ..broker import Connection, Message, Session, Subscription
    from ..broker._session import Outgoing
    from ..protocol import Properties


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

    def load(self) -> Snapshot:
        return EMPTY

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Begin writing behind, on ``loop``."""

    def touch(self, conn: Connection | None) -> None:
        """``conn``'s next writes wait until what was just recorded is durable."""

    # -- what the broker records --------------------------------------------------------------

    def session_saved(self, session: Session) -> None:
        """The session's own fields changed (expiry, connection state, will)."""

    def session_adopted(self, session: Session) -> None:
        """A session became persistent: write it whole."""

    def session_forgotten(self, session: Session) -> None:
        """The session ended, or stopped being persistent: remove it whole."""

    def subscription_saved(self, session: Session, sub: Subscription) -> None: ...

    def subscription_removed(self, session: Session, topic_filter: str) -> None: ...

    def outgoing_saved(self, session: Session, out: Outgoing) -> None:
        """A message was given to the session, or its packet id or state changed."""

    def outgoing_removed(self, session: Session, out: Outgoing) -> None: ...

    def release_awaited(self, session: Session, packet_id: int, awaited: bool) -> None:
        """An inbound QoS 2 packet id now awaits its PUBREL, or no longer does."""

    def retained_changed(self, topic: str, message: Message | None) -> None: ...

    # -- lifetime -------------------------------------------------------------------------------

    async def flush(self) -> None:
        """Wait until everything recorded so far is durable."""

    async def close(self) -> None:
        """Write what is pending and close."""
