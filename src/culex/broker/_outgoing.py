"""A message on its way to a session, and how many a session may keep waiting: the queueing
limits."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._message import Message

AWAITING_ACK = 0  # PUBLISH sent, waiting for PUBACK (QoS 1) or PUBREC (QoS 2)
AWAITING_COMP = 1  # PUBREL sent, waiting for PUBCOMP


class Outgoing:
    """One message on its way to one session."""

    __slots__ = ("message", "packet_id", "qos", "retain", "state", "sub_ids")

    def __init__(self, message: Message, qos: int, retain: bool, sub_ids: tuple[int, ...],
                 packet_id: int = 0, state: int = AWAITING_ACK) -> None:
        self.message = message
        self.qos = qos
        self.retain = retain
        self.sub_ids = sub_ids
        self.packet_id = packet_id  # 0 while queued
        self.state = state


# With no queue limit, how many messages waiting for a connected client make its publishers
# wait for it (see _flow).
PRESSURE_UNLIMITED = 256


class Limits:
    """The queueing limits a session obeys (Mosquitto's option names; 0 means no limit)."""

    __slots__ = ("max_inflight_messages", "max_queued_bytes", "max_queued_messages",
                 "pressure_bytes", "pressure_messages", "queue_qos0_messages")

    def __init__(self, max_inflight_messages: int = 20, max_queued_messages: int = 1000,
                 max_queued_bytes: int = 0, queue_qos0_messages: bool = False) -> None:
        self.max_inflight_messages = max_inflight_messages
        self.max_queued_messages = max_queued_messages
        self.max_queued_bytes = max_queued_bytes
        self.queue_qos0_messages = queue_qos0_messages
        # A quarter of the queue waiting for a connected client slows its publishers down:
        # short waits (a window full for a moment) do not, a queue on its way to overflowing
        # does, well before it drops anything.
        self.pressure_messages = (max(1, max_queued_messages // 4) if max_queued_messages
                                  else PRESSURE_UNLIMITED)
        self.pressure_bytes = max_queued_bytes // 4 if max_queued_bytes else 0
