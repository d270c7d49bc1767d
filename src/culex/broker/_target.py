"""Where a session's messages go while it is attached: the delivery-target seam.

A client connection is one kind of target; a bridge link to another broker or a remote node of
a cluster are others. ``Session`` knows targets only through this interface, so any of them
gets the same queueing, in-flight window, QoS 1/2 flows and durability.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..persistence import Holder

if TYPE_CHECKING:
    from ..protocol import ReasonCode
    from ._message import Message


class DeliveryTarget(Holder, Protocol):
    """What a session needs of the peer it delivers to (and a durable store of it: ``Holder``,
    to hold writes until the changes they follow are on disk)."""

    @property
    def paused(self) -> bool:
        """Its output buffer is full: messages wait in the session queue meanwhile."""

    @property
    def send_window(self) -> int:
        """How many QoS 1/2 messages may be unacknowledged at once (Receive Maximum)."""

    def send_publish(self, message: Message, qos: int, retain: bool, dup: bool, packet_id: int,
                     sub_ids: tuple[int, ...]) -> bool:
        """Send one PUBLISH; False if it is larger than the peer accepts (not sent)."""

    def send_pubrel(self, packet_id: int) -> None: ...

    def close(self, reason: ReasonCode, why: str) -> None:
        """The session is taken over, or the broker stops: hang up, saying why."""
