"""A Connection driven without a Broker: a small stand-in Host answers what it asks.

This is the connection as the sans-IO state machine it is: bytes in, bytes out (checked on the
wire), time from a fake clock, and the broker's answers chosen by the test.
"""

from __future__ import annotations

from typing import Any

from culex.auth import ClientInfo
from culex.broker import Accepted, Connection, Host, Limits, Session, State
from culex.broker._connect import connack_properties, negotiate
from culex.broker._deadlines import Deadlines
from culex.config import Config
from culex.observability import Counters
from culex.protocol import (
    AssemblyBudget,
    ConnAck,
    Connect,
    Decoder,
    Disconnect,
    Packet,
    PingReq,
    PingResp,
    PubAck,
    Publish,
    ReasonCode,
    SubAck,
    Subscribe,
    SubscriptionRequest,
    Unsubscribe,
)

from support import FakeScheduler, MemorySink


class StubHost:
    """Answers a connection the way the test says; records what it was told."""

    def __init__(self, refusal: tuple[int, str] | None = None) -> None:
        self.config = Config()
        self.counters = Counters()
        self.scheduler = FakeScheduler()
        self.deadlines = Deadlines(self.scheduler)
        self.assembly = AssemblyBudget()
        self.refusal = refusal
        self.published: list[tuple[str, bytes]] = []
        self.disconnected_with_will: list[bool] = []
        self.failed_logins: list[str] = []

    def clock(self) -> float:
        return self.scheduler.time()

    def check_connect(self, packet: Connect) -> tuple[int, str] | None:
        return None

    def assign_client_id(self) -> str:
        return "assigned"

    def authenticate(self, conn: Any, packet: Connect, client: ClientInfo,
                     by_certificate: bool, listener: Any) -> None:
        conn.authenticated(client, self.refusal)

    def authorize_will(self, conn: Any, packet: Connect, client: ClientInfo,
                       reason: int | None) -> None:
        conn.authenticated(client, None)

    def login_failed(self, peer: str) -> None:
        self.failed_logins.append(peer)

    def admit(self, conn: Any, packet: Connect, then: Any) -> None:
        then(None)

    def connect(self, conn: Any, packet: Connect, client: ClientInfo,
                auth_method: str | None, auth_reply: bytes | None) -> Accepted:
        session = Session(client.client_id, 0, Limits(), self.counters)
        session.attach(conn, client, 0)
        props = connack_properties(self.config, packet, client.client_id, auth_method,
                                   auth_reply)
        return negotiate(self.config, packet, session, False, 0, props)

    def disconnected(self, conn: Any, session: Session, publish_will: bool) -> None:
        self.disconnected_with_will.append(publish_will)

    def publish_from_client(self, conn: Any, topic: str, packet: Publish) -> int:
        self.published.append((topic, bytes(packet.payload)))
        return ReasonCode.SUCCESS

    def subscribe(self, session: Session, version: int, packet: Subscribe) -> Any:
        return [request.qos for request in packet.subscriptions], iter(())

    def unsubscribe(self, session: Session, packet: Unsubscribe) -> list[int]:
        return [0x11 for _ in packet.topic_filters]


def wired(host: StubHost, version: int = 4) -> tuple[Connection, MemorySink]:
    sink = MemorySink()
    typed: Host = host  # held to the interface by the type checker
    return Connection(typed, sink, "memory"), sink


def packets(sink: MemorySink, version: int) -> list[Packet]:
    decoder = Decoder(version=version)
    decoder.feed(bytes(sink.data))
    out = []
    while (packet := decoder.next_packet()) is not None:
        out.append(packet)
    return out


def test_connect_publish_subscribe_ping_disconnect_without_a_broker() -> None:
    host = StubHost()
    conn, sink = wired(host)
    conn.data_received(Connect("alone", 4).encode(4))
    assert conn.state is State.CONNECTED and conn.client_id == "alone"
    assert bytes(sink.data) == b"\x20\x02\x00\x00"  # CONNACK accepted, no session present
    stream = b"".join(p.encode(4) for p in (
        Publish("a/b", b"hello", qos=1, packet_id=9),
        Subscribe(1, [SubscriptionRequest("a/#", 1)]),
        PingReq()))
    conn.data_received(stream)
    assert host.published == [("a/b", b"hello")]
    assert packets(sink, 4)[1:] == [PubAck(9), SubAck(1, [1]), PingResp()]
    conn.data_received(Disconnect().encode(4))
    assert conn.state is State.CLOSED and sink.closed
    assert host.disconnected_with_will == [False]  # a normal DISCONNECT drops the will
    assert host.counters.packets_received == 5 and host.counters.closed["client"] == 1
    assert host.counters.messages_received == [0, 1, 0]


def test_a_qos2_message_not_received_after_all_is_routed_when_sent_again() -> None:
    """In a cluster, JetStream may fail to store a QoS 2 message after the connection has
    marked its packet id as awaiting PUBREL: the id is forgotten, so that the client's resent
    PUBLISH (DUP) is routed instead of being taken for a duplicate."""
    host = StubHost()
    conn, _ = wired(host, 5)
    conn.data_received(Connect("alone", 5).encode(5))
    publish = Publish("a/b", b"once", qos=2, packet_id=7)
    conn.data_received(publish.encode(5))
    resent = Publish("a/b", b"once", qos=2, packet_id=7, dup=True)
    conn.data_received(resent.encode(5))
    assert host.published == [("a/b", b"once")]  # a duplicate: not routed twice
    conn.not_received(7)
    conn.data_received(resent.encode(5))
    assert host.published == [("a/b", b"once")] * 2


def test_a_refusal_from_the_host_is_the_connack_and_nothing_after_is_read() -> None:
    host = StubHost(refusal=(ReasonCode.NOT_AUTHORIZED, "not you"))
    conn, sink = wired(host, 5)
    conn.data_received(Connect("c", 5).encode(5) + Publish("t", b"x").encode(5))
    [ack] = packets(sink, 5)
    assert isinstance(ack, ConnAck) and ack.reason_code == ReasonCode.NOT_AUTHORIZED
    assert ack.properties.reason_string == "not you"
    assert conn.state is State.CLOSED and host.published == []
    assert host.counters.refused["not_authorized"] == 1 and host.counters.auth_failures == 1
    assert host.failed_logins == ["memory"]


def test_the_connect_timeout_comes_from_the_host_clock() -> None:
    host = StubHost()
    conn, sink = wired(host)
    host.scheduler.advance(host.config.connect_timeout + 1)
    assert conn.state is State.CLOSED and sink.closed
    assert host.counters.refused["timeout"] == 1
