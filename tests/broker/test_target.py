"""The delivery-target seam: a Session delivers to anything that implements DeliveryTarget.

A plain object stands in for a client connection here, as a bridge link or a remote node
will: QoS 1 and QoS 2 flows, the in-flight window, the queue and its limits all work
against it, and a persistent session's store holds its writes through the same interface.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from culex.broker import DeliveryTarget, Limits, Message, Session
from culex.observability import Counters
from culex.protocol import ReasonCode


@dataclass
class Sent:
    kind: str
    packet_id: int
    payload: bytes = b""
    qos: int = 0
    dup: bool = False


@dataclass
class PlainTarget:
    """Not a Connection: a list of what the session asked it to send."""

    send_window: int = 2
    paused: bool = False
    max_size: int = 0  # refuse payloads larger than this (0: no limit)
    sent: list[Sent] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    held: list[int] = field(default_factory=list)

    def send_publish(self, message: Message, qos: int, retain: bool, dup: bool, packet_id: int,
                     sub_ids: tuple[int, ...]) -> bool:
        if self.max_size and len(message.payload) > self.max_size:
            return False
        self.sent.append(Sent("publish", packet_id, bytes(message.payload), qos, dup))
        return True

    def send_pubrel(self, packet_id: int) -> None:
        self.sent.append(Sent("pubrel", packet_id))

    def close(self, reason: ReasonCode, why: str) -> None:
        self.closed.append(why)

    def hold(self, batch: int) -> None:
        self.held.append(batch)

    def release(self, batch: int) -> None:
        pass

    def waiting_for(self) -> int:
        return 0


def attached(target: PlainTarget, **limits: int) -> tuple[Session, Counters]:
    counters = Counters()
    session = Session("link", 0, Limits(**limits), counters)  # type: ignore[arg-type]
    typed: DeliveryTarget = target  # the type checker holds the plain object to the interface
    session.attach(typed, None, 0)
    return session, counters


def test_qos1_flow_window_and_queue_against_a_plain_target() -> None:
    target = PlainTarget(send_window=2)
    session, _ = attached(target)
    for n in range(4):
        session.deliver(Message("t", b"m%d" % n, 1), 1, False)
    # Two in flight (the window), two waiting in order.
    assert [(s.packet_id, s.payload) for s in target.sent] == [(1, b"m0"), (2, b"m1")]
    assert session.queue is not None and len(session.queue) == 2
    assert session.on_puback(1, 0.0)
    assert target.sent[-1] == Sent("publish", 3, b"m2", 1)  # the window moved on
    assert not session.on_puback(1, 0.0)  # once only
    assert session.on_puback(2, 0.0) and session.on_puback(3, 0.0)
    assert [s.payload for s in target.sent] == [b"m0", b"m1", b"m2", b"m3"]
    assert session.on_puback(4, 0.0) and not session.inflight and not session.queue


def test_qos2_flow_against_a_plain_target() -> None:
    target = PlainTarget()
    session, _ = attached(target)
    session.deliver(Message("t", b"once", 2), 2, False)
    assert target.sent == [Sent("publish", 1, b"once", 2)]
    assert session.on_pubrec(1, False, 0.0)  # the caller sends PUBREL: the target's job
    assert not session.on_pubcomp(2, 0.0)
    assert session.on_pubcomp(1, 0.0) and not session.inflight


def test_a_resumed_session_resends_to_its_new_target() -> None:
    """MQTT-4.4.0-1: unacknowledged PUBLISH again with DUP, PUBREL again, then the queue."""
    first = PlainTarget(send_window=2)
    session, _ = attached(first)
    for n in range(3):
        session.deliver(Message("t", b"m%d" % n, 2), 2, False)
    assert session.on_pubrec(1, False, 0.0)
    session.detach(0.0)
    second = PlainTarget(send_window=2)
    session.attach(second, None, 0)
    session.resume(0.0)
    assert second.sent == [Sent("pubrel", 1), Sent("publish", 2, b"m1", 2, dup=True)]


def test_a_paused_target_gets_its_messages_later_and_the_queue_limit_drops_and_counts() -> None:
    target = PlainTarget(paused=True)
    session, counters = attached(target, max_queued_messages=2)
    for n in range(3):
        session.deliver(Message("t", b"m%d" % n, 1), 1, False)
    assert target.sent == []
    assert counters.dropped["queue_full"] == 1 and session.dropped == 1
    target.paused = False
    session.pump(0.0)
    assert [s.payload for s in target.sent] == [b"m0", b"m1"]


def test_a_message_too_large_for_the_target_is_dropped_and_counted() -> None:
    """MQTT-3.1.2-25: dropped as if delivered."""
    target = PlainTarget(max_size=3)
    session, counters = attached(target)
    session.deliver(Message("t", b"too large", 1), 1, False)
    session.deliver(Message("t", b"ok", 0), 0, False)
    assert target.sent == [Sent("publish", 0, b"ok", 0)] and not session.inflight
    assert counters.dropped["too_large"] == 1


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 8), st.lists(st.integers(0, 7), max_size=8)),
                min_size=1, max_size=40),
       st.one_of(st.integers(0, 10), st.just(65530)))
def test_packet_ids_in_flight_are_distinct_non_zero_and_wrap(
        rounds: list[tuple[int, list[int]]], start: int) -> None:
    """MQTT-2.2.1-4 (ids of unacknowledged PUBLISHes distinct, never 0), across 65,535."""
    target = PlainTarget(send_window=8)
    session, _ = attached(target, max_queued_messages=0)
    # The allocator picks the id after the last one given: begin anywhere, wrap included.
    for _ in range(start):
        session.deliver(Message("t", b"", 1), 1, False)
        assert session.on_puback(target.sent[-1].packet_id, 0.0)
    for count, acks in rounds:
        for _ in range(count):
            session.deliver(Message("t", b"", 1), 1, False)
        in_flight = list(session.inflight)
        assert 0 not in in_flight and len(in_flight) == len(set(in_flight)) <= 8
        assert all(0 < s.packet_id <= 65535 for s in target.sent)
        for index in sorted(set(acks)):
            if index < len(in_flight):
                assert session.on_puback(in_flight[index], 0.0)
