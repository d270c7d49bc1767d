"""Broker semantics without sockets: an in-memory client, a clock that moves when told."""

from __future__ import annotations

from typing import Any

import pytest

from culex.broker._flow import MAX_WAIT
from culex.protocol import (
    ConnAck,
    Connect,
    Disconnect,
    PingReq,
    PingResp,
    Properties,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    ReasonCode,
    SubAck,
    Subscribe,
    SubscriptionRequest,
    UnsubAck,
    Unsubscribe,
    Will,
)

from support import MemoryClient, bare, make_broker


def connect(broker: Any, client_id: str = "c", version: int = 4, **kw: Any) -> MemoryClient:
    client = MemoryClient(broker, version)
    client.send(Connect(client_id, version, **kw))
    return client


def connack(client: MemoryClient) -> ConnAck:
    packets = client.received()
    assert packets and isinstance(packets[0], ConnAck), packets
    client.backlog = packets[1:]
    return packets[0]


def subscribe(client: MemoryClient, *filters: str, qos: int = 1, pid: int = 1,
              **options: Any) -> list[Any]:
    props = options.pop("properties", Properties())
    client.send(Subscribe(pid, [SubscriptionRequest(f, qos, **options) for f in filters], props))
    return client.received()


def publishes(client: MemoryClient) -> list[Publish]:
    return [p for p in client.received() if isinstance(p, Publish)]


# -- CONNECT --------------------------------------------------------------------------------

def test_connack_accepts_each_version() -> None:
    """MQTT-3.1.4-5, MQTT-3.2.2-2; 3.1.1: MQTT-3.1.4-4, 3.1.1: MQTT-3.2.2-3."""
    broker, _ = make_broker()
    for version in (3, 4, 5):
        ack = connack(connect(broker, f"c{version}", version))
        assert ack.reason_code == 0 and not ack.session_present


def test_empty_client_id() -> None:
    """MQTT-3.1.3-6, -7; 3.1.1: MQTT-3.1.3-6, -9."""
    broker, _ = make_broker()
    ack = connack(connect(broker, "", 5))
    assert ack.reason_code == 0
    assigned = ack.properties.assigned_client_identifier  # MQTT-3.2.2-16
    assert assigned and assigned in broker.sessions
    assert connack(connect(broker, "", 4, clean_start=True)).reason_code == 0
    refused = connect(broker, "", 4, clean_start=False)
    assert connack(refused).reason_code == 2 and refused.sink.closed  # 3.1.1: MQTT-3.1.3-8
    refused = connect(broker, "", 3)
    assert connack(refused).reason_code == 2 and refused.sink.closed


def test_first_packet_must_be_connect() -> None:
    """3.1.1: MQTT-3.1.0-1."""
    broker, _ = make_broker()
    client = MemoryClient(broker)
    client.send(PingReq())
    assert client.received() == [] and client.sink.closed  # MQTT-3.1.0-1


@pytest.mark.parametrize("version", [4, 5])
def test_second_connect_is_a_protocol_error(version: int) -> None:
    """3.1.1: MQTT-3.1.0-2."""
    broker, _ = make_broker()
    client = connect(broker, "c", version)
    connack(client)
    client.send(Connect("c", version))
    assert client.sink.closed  # MQTT-3.1.0-2
    if version == 5:
        assert bare(client.received()) == [Disconnect(ReasonCode.PROTOCOL_ERROR)]


def test_nothing_after_a_refused_connect_is_processed() -> None:
    """MQTT-3.1.4-2."""
    broker, _ = make_broker(allow_anonymous=False)
    client = MemoryClient(broker, 5)
    client.send(Connect("c", 5), Publish("t", b"x"))
    assert bare(client.received()) == [ConnAck(False, ReasonCode.NOT_AUTHORIZED)]
    assert client.sink.closed  # MQTT-3.1.4-6


def test_anonymous_refused_in_v3_with_code_5() -> None:
    broker, _ = make_broker(allow_anonymous=False)
    assert connack(connect(broker)).reason_code == 5


def test_extended_authentication_is_refused() -> None:
    broker, _ = make_broker()
    client = connect(broker, "c", 5, properties=Properties(authentication_method="SCRAM"))
    assert connack(client).reason_code == ReasonCode.BAD_AUTHENTICATION_METHOD


def test_invalid_will_topic() -> None:
    broker, _ = make_broker()
    client = connect(broker, "c", 5, will=Will("a/#", b"x"))
    assert connack(client).reason_code == ReasonCode.TOPIC_NAME_INVALID
    client = connect(broker, "d", 4, will=Will("a/#", b"x"))
    assert client.received() == [] and client.sink.closed


# -- keep-alive -----------------------------------------------------------------------------

@pytest.mark.parametrize("version", [4, 5])
def test_keep_alive_closes_after_one_and_a_half_periods(version: int) -> None:
    broker, clock = make_broker()
    client = connect(broker, "c", version, keep_alive=10, will=Will("w", b"gone"))
    watcher = connect(broker, "w", 4)
    connack(client)
    subscribe(watcher, "w")
    clock.advance(14)
    client.send(PingReq())
    assert client.received() == [PingResp()]
    clock.advance(14.9)  # 14.9 s since the PINGREQ
    assert not client.sink.closed
    clock.advance(0.2)
    assert client.sink.closed  # MQTT-3.1.2-22 (3.1.1: MQTT-3.1.2-24)
    if version == 5:
        assert bare(client.received()) == [Disconnect(ReasonCode.KEEP_ALIVE_TIMEOUT)]
    assert [p.payload for p in publishes(watcher)] == [b"gone"]


def test_max_keepalive() -> None:
    broker, _ = make_broker(max_keepalive=60)
    ack = connack(connect(broker, "c", 5, keep_alive=600))
    assert ack.reason_code == 0 and ack.properties.server_keep_alive == 60  # MQTT-3.2.2-21
    assert connack(connect(broker, "d", 4, keep_alive=600)).reason_code == 2


def test_connect_timeout() -> None:
    broker, clock = make_broker(connect_timeout=5)
    client = MemoryClient(broker)
    clock.advance(5)
    assert client.sink.closed


# -- sessions -------------------------------------------------------------------------------

def test_session_takeover() -> None:
    """MQTT-3.1.3-2."""
    broker, _ = make_broker()
    first = connect(broker, "c", 5, clean_start=False,
                    properties=Properties(session_expiry_interval=60))
    connack(first)
    subscribe(first, "t")
    second = connect(broker, "c", 5, clean_start=False,
                     properties=Properties(session_expiry_interval=60))
    assert bare(first.received()) == [Disconnect(ReasonCode.SESSION_TAKEN_OVER)]  # MQTT-3.1.4-3
    assert first.sink.closed
    assert connack(second).session_present
    publisher = connect(broker, "p")
    publisher.send(Publish("t", b"x"))
    assert [p.payload for p in publishes(second)] == [b"x"]


def test_persistent_session_queues_and_delivers_in_order() -> None:
    """3.1.1: MQTT-3.1.2-4, -5, 3.1.1: MQTT-4.5.0-1; fresh ids: 3.1.1: MQTT-2.3.1-4. 3.1.1:
    MQTT-4.1.0-1, -2."""
    broker, _ = make_broker()
    sub = connect(broker, "s", 4, clean_start=False)
    connack(sub)
    subscribe(sub, "t/#", qos=2)
    sub.drop()
    pub = connect(broker, "p")
    for i in range(3):
        pub.send(Publish("t/x", str(i).encode(), 1, packet_id=i + 1))
    pub.send(Publish("t/x", b"qos0"))  # QoS 0 is not kept for an absent client
    pub.send(Publish("t/y", b"two", 2, packet_id=9))
    back = connect(broker, "s", 4, clean_start=False)
    assert connack(back).session_present  # MQTT-3.2.2-3 (3.1.1: MQTT-3.2.2-2)
    got = publishes(back)
    assert [(p.payload, p.qos) for p in got] == [(b"0", 1), (b"1", 1), (b"2", 1), (b"two", 2)]
    assert len({p.packet_id for p in got}) == 4


def test_clean_start_discards_the_session() -> None:
    """3.1.1: MQTT-3.1.2-6."""
    broker, _ = make_broker()
    sub = connect(broker, "s", 4, clean_start=False)
    subscribe(sub, "t")
    sub.drop()
    back = connect(broker, "s", 4, clean_start=True)
    assert not connack(back).session_present  # MQTT-3.2.2-1 (3.1.1)
    connect(broker, "p").send(Publish("t", b"x", 1, packet_id=1))
    assert publishes(back) == []


def test_unacknowledged_messages_are_resent_with_dup() -> None:
    """3.1.1: MQTT-3.3.1-1, 3.1.1: MQTT-4.4.0-1, 3.1.1: MQTT-4.6.0-1."""
    broker, _ = make_broker()
    sub = connect(broker, "s", 4, clean_start=False)
    subscribe(sub, "t", qos=2)
    pub = connect(broker, "p")
    pub.send(Publish("t", b"one", 1, packet_id=1), Publish("t", b"two", 2, packet_id=2))
    first = publishes(sub)
    assert [p.dup for p in first] == [False, False]
    sub.send(PubRec(first[1].packet_id))
    assert sub.received() == [PubRel(first[1].packet_id)]
    sub.drop()
    back = connect(broker, "s", 4, clean_start=False)
    packets = back.received()[1:]
    # MQTT-4.4.0-1: the PUBLISH again with DUP (MQTT-3.3.1-1), the PUBREL again, in order.
    assert packets == [Publish("t", b"one", 1, dup=True, packet_id=first[0].packet_id),
                       PubRel(first[1].packet_id)]
    back.send(PubAck(first[0].packet_id), PubComp(first[1].packet_id))
    assert broker.sessions["s"].inflight == {}


def test_session_expiry_v5() -> None:
    """MQTT-4.1.0-2, MQTT-3.1.2-23."""
    broker, clock = make_broker()
    sub = connect(broker, "s", 5, clean_start=False,
                  properties=Properties(session_expiry_interval=30))
    subscribe(sub, "t")
    sub.drop()
    clock.advance(29)
    assert "s" in broker.sessions
    clock.advance(1)
    assert "s" not in broker.sessions and broker.router.count == 0
    assert not connack(connect(broker, "s", 5, clean_start=False)).session_present


def test_session_expiry_zero_ends_at_disconnect() -> None:
    broker, _ = make_broker()
    client = connect(broker, "s", 5, clean_start=False)
    subscribe(client, "t")
    client.send(Disconnect())
    assert "s" not in broker.sessions


def test_disconnect_cannot_set_expiry_after_zero() -> None:
    broker, _ = make_broker()
    client = connect(broker, "s", 5)
    connack(client)
    client.send(Disconnect(0, Properties(session_expiry_interval=10)))
    assert bare(client.received()) == [Disconnect(ReasonCode.PROTOCOL_ERROR)]  # MQTT-3.14.2-2


def test_disconnect_can_change_expiry() -> None:
    broker, _ = make_broker()
    client = connect(broker, "s", 5, properties=Properties(session_expiry_interval=10))
    client.send(Disconnect(0, Properties(session_expiry_interval=0)))
    assert "s" not in broker.sessions


# -- QoS ------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", [3, 4, 5])
def test_qos_handshakes_inbound(version: int) -> None:
    """MQTT-3.3.4-1, MQTT-2.2.1-5; 3.1.1: MQTT-3.3.4-1, 3.1.1: MQTT-4.3.2-2,
    3.1.1: MQTT-4.3.3-2. MQTT-4.3.3-8; 3.1.1: MQTT-2.3.1-6."""
    broker, _ = make_broker()
    pub = connect(broker, "p", version)
    connack(pub)
    pub.send(Publish("t", b"x", 1, packet_id=5))
    ack = pub.received()
    code = ReasonCode.NO_MATCHING_SUBSCRIBERS if version == 5 else 0
    assert ack == [PubAck(5, code)]
    pub.send(Publish("t", b"x", 2, packet_id=6))
    assert pub.received() == [PubRec(6, code)]
    pub.send(PubRel(6))
    assert pub.received() == [PubComp(6)]


def test_qos2_duplicate_before_pubrel_is_delivered_once() -> None:
    broker, _ = make_broker()
    sub = connect(broker, "s")
    subscribe(sub, "t", qos=2)
    pub = connect(broker, "p")
    connack(pub)
    pub.send(Publish("t", b"x", 2, packet_id=1))
    pub.send(Publish("t", b"x", 2, dup=True, packet_id=1))
    assert pub.received() == [PubRec(1), PubRec(1)]
    assert len(publishes(sub)) == 1
    pub.send(PubRel(1))
    pub.send(Publish("t", b"x", 2, packet_id=1))  # a new message with the freed id
    assert len(publishes(sub)) == 1


def test_unknown_pubrel_gets_pubcomp() -> None:
    broker, _ = make_broker()
    client = connect(broker, "c", 5)
    connack(client)
    client.send(PubRel(3))
    assert client.received() == [PubComp(3, ReasonCode.PACKET_IDENTIFIER_NOT_FOUND)]


@pytest.mark.parametrize(("pub_qos", "sub_qos"), [(a, b) for a in range(3) for b in range(3)])
def test_delivery_qos_is_the_minimum(pub_qos: int, sub_qos: int) -> None:
    """3.1.1: MQTT-3.8.4-6."""
    broker, _ = make_broker()
    sub = connect(broker, "s")
    subscribe(sub, "t", qos=sub_qos)
    connect(broker, "p").send(Publish("t", b"x", pub_qos, packet_id=1 if pub_qos else 0))
    (got,) = publishes(sub)
    assert got.qos == min(pub_qos, sub_qos)


def test_overlapping_subscriptions_give_one_delivery() -> None:
    """MQTT-3.3.4-4."""
    broker, _ = make_broker()
    sub = connect(broker, "s", 5)
    connack(sub)
    subscribe(sub, "a/+", qos=0, properties=Properties(subscription_identifiers=[1]))
    subscribe(sub, "a/#", qos=2, pid=2, properties=Properties(subscription_identifiers=[2]))
    subscribe(sub, "a/b", qos=1, pid=3)
    connect(broker, "p").send(Publish("a/b", b"x", 2, packet_id=1))
    (got,) = publishes(sub)
    assert got.qos == 2  # MQTT-3.3.4-2
    assert sorted(got.properties.subscription_identifiers) == [1, 2]  # MQTT-3.3.4-3


def test_inflight_window_and_queue_order() -> None:
    """3.1.1: MQTT-4.6.0-5, -6."""
    broker, _ = make_broker(max_inflight_messages=2)
    sub = connect(broker, "s")
    subscribe(sub, "t")
    pub = connect(broker, "p")
    for i in range(5):
        pub.send(Publish("t", bytes([i]), 1, packet_id=i + 1))
    got = publishes(sub)
    assert [p.payload for p in got] == [b"\x00", b"\x01"]
    sub.send(PubAck(got[0].packet_id))
    got2 = publishes(sub)
    assert [p.payload for p in got2] == [b"\x02"]
    sub.send(PubAck(got[1].packet_id), PubAck(got2[0].packet_id))
    assert [p.payload for p in publishes(sub)] == [b"\x03", b"\x04"]


def test_receive_maximum_of_the_client_bounds_the_window() -> None:
    """MQTT-4.9.0-1, -2."""
    broker, _ = make_broker(max_inflight_messages=10)
    sub = connect(broker, "s", 5, properties=Properties(receive_maximum=1))
    connack(sub)
    subscribe(sub, "t")
    pub = connect(broker, "p")
    pub.send(Publish("t", b"1", 1, packet_id=1), Publish("t", b"2", 1, packet_id=2))
    assert len(publishes(sub)) == 1  # MQTT-3.3.4-9


def test_offline_queue_limit() -> None:
    broker, _ = make_broker(max_queued_messages=2)
    sub = connect(broker, "s", 4, clean_start=False)
    subscribe(sub, "t")
    sub.drop()
    pub = connect(broker, "p")
    for i in range(4):
        pub.send(Publish("t", bytes([i]), 1, packet_id=i + 1))
    assert broker.sessions["s"].dropped == 2
    back = connect(broker, "s", 4, clean_start=False)
    assert [p.payload for p in publishes(back)] == [b"\x00", b"\x01"]


def test_message_too_large_for_client_is_not_sent() -> None:
    broker, _ = make_broker()
    sub = connect(broker, "s", 5, properties=Properties(maximum_packet_size=50))
    connack(sub)
    subscribe(sub, "t")
    pub = connect(broker, "p")
    pub.send(Publish("t", b"x" * 100, 1, packet_id=1), Publish("t", b"small", 1, packet_id=2))
    assert [p.payload for p in publishes(sub)] == [b"small"]  # MQTT-3.1.2-24, -25
    assert len(broker.sessions["s"].inflight) == 1


def test_message_size_limit() -> None:
    broker, _ = make_broker(message_size_limit=10)
    pub = connect(broker, "p", 5)
    connack(pub)
    pub.send(Publish("t", b"x" * 11, 1, packet_id=1))
    assert pub.received() == [PubAck(1, ReasonCode.QUOTA_EXCEEDED)]


# -- publish rules --------------------------------------------------------------------------

def test_topic_alias() -> None:
    """MQTT-3.3.2-12 (every alias up to the maximum it announced is accepted)."""
    broker, _ = make_broker()
    sub = connect(broker, "s")
    subscribe(sub, "a/b", qos=0)
    pub = connect(broker, "p", 5)
    connack(pub)
    assert connack(connect(broker, "q", 5)).properties.topic_alias_maximum == 10
    pub.send(Publish("a/b", b"1", properties=Properties(topic_alias=3)))
    pub.send(Publish("", b"2", properties=Properties(topic_alias=3)))
    assert [(p.topic, p.payload) for p in publishes(sub)] == [("a/b", b"1"), ("a/b", b"2")]
    pub.send(Publish("a", b"3", properties=Properties(topic_alias=11)))
    assert bare(pub.received()) == [Disconnect(ReasonCode.TOPIC_ALIAS_INVALID)]


def test_unknown_topic_alias_is_a_protocol_error() -> None:
    broker, _ = make_broker()
    pub = connect(broker, "p", 5)
    connack(pub)
    pub.send(Publish("", b"2", properties=Properties(topic_alias=1)))
    assert bare(pub.received()) == [Disconnect(ReasonCode.PROTOCOL_ERROR)]


def test_subscription_identifier_from_a_client_is_a_protocol_error() -> None:
    broker, _ = make_broker()
    pub = connect(broker, "p", 5)
    connack(pub)
    pub.send(Publish("t", b"", properties=Properties(subscription_identifiers=[1])))
    assert bare(pub.received()) == [Disconnect(ReasonCode.PROTOCOL_ERROR)]  # MQTT-3.3.4-6


def test_no_local() -> None:
    """MQTT-3.8.3-3."""
    broker, _ = make_broker()
    client = connect(broker, "c", 5)
    connack(client)
    subscribe(client, "t", no_local=True)
    client.send(Publish("t", b"mine"))
    assert publishes(client) == []
    connect(broker, "other").send(Publish("t", b"theirs"))
    assert [p.payload for p in publishes(client)] == [b"theirs"]


def test_wildcards_do_not_match_dollar_topics() -> None:
    """3.1.1: MQTT-4.7.2-1."""
    broker, _ = make_broker()
    sub = connect(broker, "s")
    subscribe(sub, "#", "+/x")
    connect(broker, "p").send(Publish("$SYS/x", b"1"), Publish("a/x", b"2"))
    assert [p.payload for p in publishes(sub)] == [b"2"]  # MQTT-4.7.2-1


def test_message_expiry() -> None:
    broker, clock = make_broker()
    sub = connect(broker, "s", 5, clean_start=False,
                  properties=Properties(session_expiry_interval=100))
    subscribe(sub, "t")
    sub.drop()
    pub = connect(broker, "p", 5)
    pub.send(Publish("t", b"short", 1, packet_id=1,
                     properties=Properties(message_expiry_interval=5)))
    pub.send(Publish("t", b"long", 1, packet_id=2,
                     properties=Properties(message_expiry_interval=50)))
    clock.advance(10)
    back = connect(broker, "s", 5, clean_start=False,
                   properties=Properties(session_expiry_interval=100))
    (got,) = publishes(back)  # MQTT-3.3.2-5: the expired one is gone
    assert got.payload == b"long"
    assert got.properties.message_expiry_interval == 40  # MQTT-3.3.2-6


# -- subscriptions and retained messages ----------------------------------------------------

@pytest.mark.parametrize(("version", "bad"), [(4, 0x80), (5, ReasonCode.TOPIC_FILTER_INVALID)])
def test_suback_codes(version: int, bad: int) -> None:
    """MQTT-3.9.3-1, MQTT-3.8.4-7; 3.1.1: MQTT-3.8.4-5, 3.1.1: MQTT-3.9.3-1. MQTT-3.8.4-1, -2, -5,
    -6, MQTT-3.9.3-2, MQTT-2.2.1-6; 3.1.1: MQTT-3.8.4-1, -2, -4, 3.1.1: MQTT-3.9.3-2."""
    broker, _ = make_broker(max_qos=1)
    client = connect(broker, "c", version)
    connack(client)
    (ack,) = subscribe(client, "a", "a/#/b", "b", qos=2)
    assert ack == SubAck(1, [1, bad, 1])


def test_unsuback_codes() -> None:
    """MQTT-3.11.3-1 (a code per filter, in order); 3.1.1: MQTT-3.10.4-4, -5. MQTT-3.10.4-6,
    MQTT-3.11.3-2."""
    broker, _ = make_broker()
    client = connect(broker, "c", 5)
    connack(client)
    subscribe(client, "a")
    client.send(Unsubscribe(2, ["a", "b", "a/#/b"]))
    assert client.received() == [
        UnsubAck(2, [0, ReasonCode.NO_SUBSCRIPTION_EXISTED, ReasonCode.TOPIC_FILTER_INVALID])]
    client3 = connect(broker, "d", 4)
    connack(client3)
    client3.send(Unsubscribe(2, ["x"]))
    assert client3.received() == [UnsubAck(2)]


def test_retained_messages() -> None:
    """3.1.1: MQTT-3.3.1-5, -6, -7, -10, -11, -12; a live subscriber: MQTT-3.3.1-12."""
    broker, _ = make_broker()
    pub = connect(broker, "p")
    pub.send(Publish("r/a", b"1", retain=True), Publish("r/b", b"2", 1, True, packet_id=1))
    pub.send(Publish("r/a", b"3", retain=True))  # replaces
    pub.send(Publish("r/c", b"4", retain=False))  # not stored (MQTT-3.3.1-8)
    sub = connect(broker, "s")
    connack(sub)
    packets = subscribe(sub, "r/#", qos=1)
    assert isinstance(packets[0], SubAck)
    got = sorted((p.topic, p.payload, p.retain, p.qos) for p in packets[1:])
    assert got == [("r/a", b"3", True, 0), ("r/b", b"2", True, 1)]
    pub.send(Publish("r/a", b"", retain=True))  # deletes
    # A live subscriber gets it without RETAIN (3.1.1: MQTT-3.3.1-9).
    assert [(p.payload, p.retain) for p in publishes(sub)] == [(b"", False)]
    late = connect(broker, "late")
    connack(late)
    assert [p.topic for p in subscribe(late, "r/#")[1:]] == ["r/b"]


def test_retain_handling_and_retain_as_published() -> None:
    broker, _ = make_broker()
    connect(broker, "p").send(Publish("r", b"1", retain=True))
    sub = connect(broker, "s", 5)
    connack(sub)
    assert len(subscribe(sub, "r", retain_handling=1)) == 2  # new subscription: sent
    assert len(subscribe(sub, "r", retain_handling=1)) == 1  # existed: not (MQTT-3.3.1-10)
    assert len(subscribe(sub, "r", retain_handling=2)) == 1  # never (MQTT-3.3.1-11)
    subscribe(sub, "r", retain_as_published=True)
    connect(broker, "p2").send(Publish("r", b"2", retain=True))
    assert [p.retain for p in publishes(sub)] == [True]  # MQTT-3.3.1-13


# -- wills ----------------------------------------------------------------------------------

def will_setup(version: int = 5, delay: int | None = None, expiry: int = 0) -> Any:
    broker, clock = make_broker()
    watcher = connect(broker, "w")
    subscribe(watcher, "will")
    props = Properties(will_delay_interval=delay) if delay is not None else Properties()
    client = connect(broker, "c", version, clean_start=False,
                     will=Will("will", b"bye", 1, False, props),
                     properties=Properties(session_expiry_interval=expiry))
    connack(client)
    return broker, clock, watcher, client


def test_will_published_when_the_connection_breaks() -> None:
    """3.1.1: MQTT-3.1.2-8."""
    _, _, watcher, client = will_setup(4)
    client.drop()
    assert [p.payload for p in publishes(watcher)] == [b"bye"]


def test_no_will_after_normal_disconnect() -> None:
    """3.1.1: MQTT-3.1.2-10, 3.1.1: MQTT-3.14.4-3."""
    _, _, watcher, client = will_setup(4)
    client.send(Disconnect())
    assert publishes(watcher) == []  # MQTT-3.1.2-10 (3.1.1: MQTT-3.1.2-8)


def test_disconnect_with_will_message() -> None:
    _, _, watcher, client = will_setup(5)
    client.send(Disconnect(ReasonCode.DISCONNECT_WITH_WILL))
    assert [p.payload for p in publishes(watcher)] == [b"bye"]


def test_will_delay() -> None:
    _, clock, watcher, client = will_setup(5, delay=10, expiry=100)
    client.drop()
    clock.advance(9)
    assert publishes(watcher) == []
    clock.advance(1)
    (got,) = publishes(watcher)
    assert got.payload == b"bye" and got.properties.will_delay_interval is None


def test_will_delay_cancelled_by_reconnection() -> None:
    broker, clock, watcher, client = will_setup(5, delay=10, expiry=100)
    client.drop()
    clock.advance(5)
    connect(broker, "c", 5, clean_start=False, properties=Properties(session_expiry_interval=100))
    clock.advance(20)
    assert publishes(watcher) == []  # MQTT-3.1.3-9


def test_will_sent_when_session_ends_before_delay() -> None:
    _, clock, watcher, client = will_setup(5, delay=60, expiry=5)
    client.drop()
    clock.advance(5)
    assert [p.payload for p in publishes(watcher)] == [b"bye"]  # MQTT-3.1.2-8


def test_shared_subscription_round_robin() -> None:
    broker, _ = make_broker()
    members = [connect(broker, f"m{i}", 5) for i in range(2)]
    for member in members:
        connack(member)
        subscribe(member, "$share/g/jobs/+", qos=0)
    pub = connect(broker, "p")
    for i in range(4):
        pub.send(Publish("jobs/x", bytes([i])))
    counts = [len(publishes(m)) for m in members]
    assert counts == [2, 2]


def test_shared_subscription_with_no_local_is_a_protocol_error() -> None:
    broker, _ = make_broker()
    client = connect(broker, "c", 5)
    connack(client)
    subscribe(client, "$share/g/t", no_local=True)
    assert client.sink.closed  # MQTT-3.8.3-4


# -- flow control and limits ----------------------------------------------------------------

def test_slow_consumer_is_queued_within_limits() -> None:
    """A subscriber that does not read makes its publisher wait MAX_WAIT at most, then is
    stalled: only it loses messages, beyond its queue limit."""
    broker, scheduler = make_broker(max_queued_messages=3)
    sub = connect(broker, "s")
    subscribe(sub, "t", qos=0)
    sub.conn.pause_writing()  # the transport's buffer is full
    pub = connect(broker, "p")
    for i in range(5):
        pub.send(Publish("t", bytes([i])))
    assert not pub.sink.reading  # the publisher waits for the subscriber first
    scheduler.advance(MAX_WAIT)  # which does not read: stalled
    assert pub.sink.reading
    assert publishes(sub) == []
    assert broker.sessions["s"].dropped == 2
    sub.conn.resume_writing()
    assert [p.payload for p in publishes(sub)] == [b"\x00", b"\x01", b"\x02"]


def test_a_slow_subscriber_slows_its_publisher_down_instead_of_losing_messages() -> None:
    broker, _ = make_broker(max_queued_messages=8)
    sub = connect(broker, "s")
    subscribe(sub, "t", qos=0)
    other = connect(broker, "other")
    subscribe(other, "t", qos=0)
    sub.conn.pause_writing()  # reading, but slower than the publisher writes
    pub = connect(broker, "p")
    pub.send(*(Publish("t", bytes([i])) for i in range(20)))
    assert not pub.sink.reading and pub.conn.decoder.buffered  # waiting, the rest unread
    assert len(publishes(other)) == 2  # the quarter of a queue of 8 that makes it wait
    sub.conn.resume_writing()  # the subscriber has caught up: the publisher goes on
    assert pub.sink.reading
    assert [p.payload for p in publishes(sub)] == [bytes([i]) for i in range(20)]
    assert len(publishes(other)) == 18 and broker.sessions["s"].dropped == 0
    # A subscriber that goes offline makes nobody wait for it.
    sub.conn.pause_writing()
    pub.send(*(Publish("t", b"x") for _ in range(2)))
    assert not pub.sink.reading
    sub.drop()
    assert pub.sink.reading


def test_connect_larger_than_the_pre_connect_cap_is_refused() -> None:
    broker, _ = make_broker()
    client = MemoryClient(broker)
    client.send_raw(b"\x10\xff\xff\xff\x01")  # announces a 4 MB CONNECT
    assert client.sink.closed and client.received() == []


def test_queue_overflow_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    broker, _ = make_broker(max_queued_messages=2)
    sub = connect(broker, "s", 4, clean_start=False)
    subscribe(sub, "t")
    sub.drop()
    pub = connect(broker, "p")
    with caplog.at_level("INFO", logger="culex"):
        for i in range(10):
            pub.send(Publish("t", bytes([i]), 1, packet_id=i + 1))
        back = connect(broker, "s", 4, clean_start=False)
        for packet in publishes(back):
            back.send(PubAck(packet.packet_id))
    warnings = [r.message for r in caplog.records if "queue is full" in r.message]
    assert len(warnings) == 1 and "client s" in warnings[0]
    assert any("caught up; 8 messages dropped" in r.message for r in caplog.records)


# -- options with Mosquitto's names ----------------------------------------------------------

def test_persistent_client_expiration() -> None:
    broker, clock = make_broker(persistent_client_expiration=3600)
    client = connect(broker, "v3", 4, clean_start=False)
    subscribe(client, "t")
    client.drop()
    clock.advance(3599)
    assert "v3" in broker.sessions
    clock.advance(1)
    assert "v3" not in broker.sessions and broker.router.count == 0


def test_retain_not_available() -> None:
    broker, _ = make_broker(retain_available=False)
    client = connect(broker, "c", 5)
    assert connack(client).properties.retain_available == 0
    client.send(Publish("t", b"x", retain=True))
    assert bare(client.received()) == [Disconnect(ReasonCode.RETAIN_NOT_SUPPORTED)]  # MQTT-3.2.2-14
    assert broker.retained.count == 0


def test_queue_qos0_messages() -> None:
    broker, _ = make_broker(queue_qos0_messages=True)
    sub = connect(broker, "s", 4, clean_start=False)
    subscribe(sub, "t", qos=0)
    sub.drop()
    connect(broker, "p").send(Publish("t", b"kept"))
    back = connect(broker, "s", 4, clean_start=False)
    assert [p.payload for p in publishes(back)] == [b"kept"]


def test_will_message_expiry_runs_from_publication() -> None:
    broker, clock = make_broker()
    watcher = connect(broker, "w", 5, keep_alive=0)
    connack(watcher)
    subscribe(watcher, "will")
    client = connect(broker, "c", 5, keep_alive=0,
                     will=Will("will", b"bye", 1, False,
                               Properties(message_expiry_interval=30)))
    connack(client)
    clock.advance(100)  # connected for longer than the will's lifetime
    client.drop()
    (got,) = publishes(watcher)
    # MQTT 5.0 3.1.3.2.4: the lifetime starts when the will is published.
    assert got.payload == b"bye" and got.properties.message_expiry_interval == 30


def test_response_topic_must_not_hold_wildcards() -> None:
    broker, _ = make_broker()
    client = connect(broker, "c", 5)
    connack(client)
    client.send(Publish("t", b"", properties=Properties(response_topic="replies/+")))
    assert bare(client.received()) == [Disconnect(ReasonCode.PROTOCOL_ERROR)]  # MQTT-3.3.2-14
    willing = connect(broker, "w", 5, will=Will("t", b"", 0, False,
                                               Properties(response_topic="r/#")))
    assert connack(willing).reason_code == ReasonCode.PROTOCOL_ERROR


def test_a_connack_larger_than_the_clients_maximum_packet_size_is_not_sent() -> None:
    """MQTT-3.1.2-24: nothing larger than the client's Maximum Packet Size is sent, not even
    the CONNACK; the client is not accepted, and its existing session is left as it was."""
    broker, _ = make_broker()
    kept = connect(broker, "c", 5, properties=Properties(session_expiry_interval=60))
    kept.send(Subscribe(1, [SubscriptionRequest("t", 1)]))
    kept.send(Disconnect())
    tiny = connect(broker, "c", 5, properties=Properties(maximum_packet_size=2))
    assert tiny.sink.data == b"" and tiny.sink.closed
    assert "t" in broker.sessions["c"].subscriptions  # neither taken over nor ended
    assert broker.counters.refused["packet_too_large"] == 1
    fits = connect(broker, "c", 5, clean_start=False,
                   properties=Properties(maximum_packet_size=64, session_expiry_interval=60))
    ack = connack(fits)
    assert ack.reason_code == 0 and ack.session_present


def test_mqtt_3_1_connack_never_says_session_present() -> None:
    """MQTT 3.1 has no Session Present: the CONNACK's first byte is reserved."""
    broker, _ = make_broker()
    connect(broker, "old", 3, clean_start=False).send(Disconnect())
    resumed = connect(broker, "old", 3, clean_start=False)
    assert bytes(resumed.sink.data[:4]) == b"\x20\x02\x00\x00"
    assert bytes(connect(broker, "new", 4, clean_start=False).sink.data[:4]) \
        == b"\x20\x02\x00\x00"
    connect(broker, "new", 4, clean_start=False).send(Disconnect())
    assert bytes(connect(broker, "new", 4, clean_start=False).sink.data[:4]) \
        == b"\x20\x02\x01\x00"  # 3.1.1: MQTT-3.2.2-2


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize(("qos", "wrong"), [(1, PubRec), (2, PubAck)])
def test_the_wrong_acknowledgement_for_a_delivery_is_a_protocol_error(
        version: int, qos: int, wrong: type) -> None:
    """A QoS 1 delivery is answered by PUBACK (MQTT 4.3.2), a QoS 2 one by PUBREC (4.3.3):
    the other is a protocol error, not the start of an exchange the broker never began."""
    broker, _ = make_broker()
    sub = connect(broker, "sub", version)
    subscribe(sub, "t", qos=qos)
    connect(broker, "pub").send(Publish("t", b"m", qos=qos, packet_id=1))
    [delivery] = publishes(sub)
    sub.send(wrong(delivery.packet_id))
    assert sub.sink.closed
    replies = sub.received()
    assert not any(isinstance(p, PubRel) for p in replies)
    if version == 5:
        assert bare(replies) == [Disconnect(ReasonCode.PROTOCOL_ERROR)]


def test_large_packets_being_received_share_a_budget() -> None:
    """All clients together may hold large_packet_memory bytes of large packets in progress;
    one that does not fit is refused with 0x97 before its body is kept; a connection that ends
    half-way gives its room back."""
    def large(topic: str, size: int) -> bytes:
        return Publish(topic, b"x" * size, qos=1, packet_id=1).encode(5)

    first = large("a", 150_000)
    limit = len(first) + 100_000  # room for the first and a little more
    broker, _ = make_broker(large_packet_memory=limit)
    a, b, c = (connect(broker, name, 5) for name in "abc")
    for client in (a, b, c):
        connack(client)
    a.send_raw(first[:70_000])  # a large packet begins: its whole size is reserved
    assert broker.assembly.used == len(first)
    second = large("b", 120_000)
    b.send_raw(second[:70_000])
    assert b.sink.closed and bare(b.received()) == [Disconnect(ReasonCode.QUOTA_EXCEEDED)]
    assert broker.assembly.used == len(first)
    a.send_raw(first[70_000:])  # complete: handed over, its room given back
    assert a.received() == [PubAck(1, ReasonCode.NO_MATCHING_SUBSCRIBERS)]
    assert broker.assembly.used == 0
    exact = large("c", limit - 10)
    assert len(exact) == limit  # the exact boundary fits
    c.send_raw(exact[:70_000])
    assert not c.sink.closed and broker.assembly.used == limit
    c.drop()  # ended half-way: the room comes back
    assert broker.assembly.used == 0
    d = connect(broker, "d", 5)
    connack(d)
    d.send_raw(large("c", limit - 9)[:70_000])  # one byte more than there is room for
    assert bare(d.received()) == [Disconnect(ReasonCode.QUOTA_EXCEEDED)]
