"""The other nodes of a cluster, as the broker sees them: the cluster seam.

A single-node broker has none (``Broker.peers`` is None and nothing here costs anything). In a
cluster (``culex.cluster``), every message routed here is also offered to the peers, and the
filters with local interest are announced to them, so that they send this node what its
subscriptions want. Messages that come from the peers are routed locally only
(``Broker.publish_from_peers``), never offered back. Shared subscriptions are the cluster's:
a message goes to one member of a group across every node, so it is never delivered to a
group where it is published, only where the cluster hands it (``Broker.deliver_to_group``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..protocol import ReasonCode
    from ._message import Message


class PeerHolder(Protocol):
    """A connection whose writes may wait for the peers (as they may for the store)."""

    def hold_for_peers(self, ticket: int) -> None: ...

    def release_for_peers(self, ticket: int) -> None: ...

    def close(self, reason: ReasonCode, why: str) -> None:
        """What it waits for cannot be done: hang up (its client sends again)."""

    def not_received(self, packet_id: int) -> None:
        """The QoS 2 message of ``packet_id`` could not be taken after all: when its client
        sends it again, it is a message to route, not a duplicate (MQTT 4.3.3)."""


class Peers(Protocol):
    def forward(self, message: Message, publisher: PeerHolder | None,
                packet_id: int = 0, looped: bool = False) -> None:
        """Send ``message`` to the other nodes; a QoS 1/2 message's publisher's next writes
        (its PUBACK or PUBREC) wait until the peers have it safe (``packet_id``: that of a
        QoS 2 PUBLISH, forgotten by the publisher's session if they cannot). ``looped``: it
        was not delivered here, and comes back to be, from the peers, at most once."""

    def filter_added(self, topic_filter: str, group: str | None) -> None:
        """The first local subscription to ``topic_filter`` (``group``: the first local member
        of the shared group ``$share/group/topic_filter``)."""

    def filter_removed(self, topic_filter: str, group: str | None) -> None:
        """The last local subscription to ``topic_filter`` (or member of the group) is gone."""

    def connected(self, client_id: str, conn: PeerHolder,
                  will: tuple[Message, int, int | None] | None) -> None:
        """A client was accepted here: the cluster's other connection with its client id,
        if any, is closed (MQTT-3.1.4-3). ``will``: its will (message, delay, expiry), for
        the other nodes to publish should this node die."""

    def admit(self, client_id: str, clean_start: bool,
              then: Callable[[tuple[int, str] | None], None]) -> None:
        """A client is about to connect here: its persistent session, wherever it is in the
        cluster, is brought here first (or ended, for ``clean_start``); then ``then(None)``,
        or ``then((reason code, why))`` to refuse the client."""

    def disconnected(self, client_id: str, conn: PeerHolder) -> None:
        """A client accepted here is gone."""

    def settle(self, conn: PeerHolder) -> None:
        """``conn``'s next writes (a SUBACK) wait until the interest announced so far is
        known to the peers: a subscriber then misses nothing published after its SUBACK."""
