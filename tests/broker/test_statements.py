"""Normative statements of MQTT 5.0 (and their 3.1.1 twins) that no other test shows, each
test naming the statements it shows. In memory, with a clock that moves when told."""

from __future__ import annotations

from typing import Any

import pytest
from test_connection import connack, connect, publishes, subscribe

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

NOBODY = ReasonCode.NO_MATCHING_SUBSCRIBERS
V5_SESSION = Properties(session_expiry_interval=3600)


def test_clean_start_in_mqtt5() -> None:
    """MQTT-3.1.2-4, MQTT-3.1.2-5, MQTT-3.1.2-6, MQTT-3.1.4-4, MQTT-3.1.2-23, MQTT-4.5.0-1,
    MQTT-3.1.3-2."""
    broker, _ = make_broker()
    first = connect(broker, "s", 5, clean_start=False, properties=V5_SESSION)
    assert connack(first).session_present is False  # no session yet: a new one
    subscribe(first, "t", qos=1)
    first.drop()
    connect(broker, "p", 5).send(Publish("t", b"kept", 1, packet_id=1))
    again = connect(broker, "s", 5, clean_start=False, properties=V5_SESSION)
    assert connack(again).session_present  # resumed, with what arrived meanwhile
    assert [p.payload for p in publishes(again)] == [b"kept"]
    again.drop()
    fresh = connect(broker, "s", 5, clean_start=True)
    assert connack(fresh).session_present is False  # discarded
    connect(broker, "p2", 5).send(Publish("t", b"gone", 1, packet_id=1))
    assert publishes(fresh) == []


def test_connack_first_and_only_once() -> None:
    """MQTT-3.2.0-1, MQTT-3.2.0-2, MQTT-3.2.2-1; 3.1.1: MQTT-3.2.0-1."""
    for version in (4, 5):
        broker, _ = make_broker()
        client = connect(broker, "c", version)
        client.send(Subscribe(1, [SubscriptionRequest("t", 0)]), PingReq())
        first, *rest = client.received()
        assert isinstance(first, ConnAck)
        assert [type(p) for p in rest] == [SubAck, PingResp]
        assert first.encode(version)[2] in (0, 1)  # acknowledge flags: bits 7-1 zero
        client.send(Connect("c", version))
        assert not any(isinstance(p, ConnAck) for p in client.received())


def test_a_refusal_has_no_session_and_closes() -> None:
    """MQTT-3.2.2-6, MQTT-3.2.2-7, MQTT-4.13.2-1; 3.1.1: MQTT-3.2.2-4, -5."""
    broker, _ = make_broker()
    client = connect(broker, "c", 5, clean_start=False, properties=Properties(
        authentication_method="unknown"))
    assert bare(client.received()) == [ConnAck(False, ReasonCode.BAD_AUTHENTICATION_METHOD)]
    assert client.sink.closed
    old = connect(broker, "", 4, clean_start=False)
    assert old.received() == [ConnAck(False, 2)] and old.sink.closed


def test_maximum_qos_is_announced_and_subscriptions_still_accepted() -> None:
    """MQTT-3.2.2-9, MQTT-3.2.2-10, MQTT-3.2.2-12."""
    broker, _ = make_broker(max_qos=1)
    client = connect(broker, "c", 5)
    assert connack(client).properties.maximum_qos == 1
    assert subscribe(client, "a", qos=2) == [SubAck(1, [1])]
    will = Will("w", b"x", qos=2)
    refused = connect(broker, "d", 5, will=will)
    assert bare(refused.received()) == [ConnAck(False, ReasonCode.QOS_NOT_SUPPORTED)]


def test_a_retained_will_without_retain_support_is_refused() -> None:
    """MQTT-3.2.2-13."""
    broker, _ = make_broker(retain_available=False)
    client = connect(broker, "c", 5, will=Will("w", b"x", retain=True))
    assert bare(client.received()) == [ConnAck(False, ReasonCode.RETAIN_NOT_SUPPORTED)]


def test_the_clients_keep_alive_is_used_when_no_server_keep_alive_is_sent() -> None:
    """MQTT-3.2.2-22."""
    broker, clock = make_broker()
    client = connect(broker, "c", 5, keep_alive=10)
    assert connack(client).properties.server_keep_alive is None
    clock.advance(14.9)
    assert not client.sink.closed
    clock.advance(0.2)
    assert bare(client.received()) == [Disconnect(ReasonCode.KEEP_ALIVE_TIMEOUT)]


@pytest.mark.parametrize("retain", [False, True])
def test_a_will_is_published_retained_only_if_asked(retain: bool) -> None:
    """MQTT-3.1.2-7, MQTT-3.1.2-14, MQTT-3.1.2-15; 3.1.1: MQTT-3.1.2-16, -17."""
    for version in (4, 5):
        broker, _ = make_broker()
        client = connect(broker, "c", version, will=Will("w/c", b"bye", 1, retain))
        connack(client)
        assert broker.retained.get("w/c") is None  # stored, not published yet
        client.drop()
        later = connect(broker, "later", version)
        connack(later)
        got = subscribe(later, "w/#")
        assert [p.payload for p in got if isinstance(p, Publish)] == ([b"bye"] if retain else [])


def test_dup_is_set_only_on_retransmission() -> None:
    """MQTT-3.3.1-2, MQTT-3.3.1-3, MQTT-4.3.1-1, MQTT-4.3.2-2, MQTT-4.3.3-2;
    3.1.1: MQTT-3.3.1-2, -3, 3.1.1: MQTT-4.3.1-1."""
    for version in (4, 5):
        broker, _ = make_broker()
        sub = connect(broker, "s", version)
        subscribe(sub, "t/#", qos=2)
        pub = connect(broker, "p", version)
        pub.send(Publish("t/1", b"a", 1, dup=True, packet_id=1),
                 Publish("t/2", b"b", 2, dup=True, packet_id=2), Publish("t/0", b"c"))
        assert [(p.qos, p.dup) for p in publishes(sub)] == [(1, False), (2, False),
                                                           (0, False)]


def test_retain_as_published_zero_clears_retain() -> None:
    """MQTT-3.3.1-12, MQTT-3.3.1-9 (retain handling 0 sends retained messages)."""
    broker, _ = make_broker()
    pub = connect(broker, "p", 5)
    pub.send(Publish("r", b"old", retain=True))
    sub = connect(broker, "s", 5)
    connack(sub)
    got = subscribe(sub, "r", retain_as_published=False, retain_handling=0)
    assert [(p.payload, p.retain) for p in got if isinstance(p, Publish)] == [(b"old", True)]
    pub.send(Publish("r", b"new", retain=True))
    assert [(p.payload, p.retain) for p in publishes(sub)] == [(b"new", False)]


def test_inbound_topic_aliases_do_not_outlive_the_connection() -> None:
    """MQTT-3.3.2-7."""
    broker, _ = make_broker()
    pub = connect(broker, "p", 5)
    connack(pub)
    pub.send(Publish("a/b", b"1", properties=Properties(topic_alias=1)))
    pub.drop()
    again = connect(broker, "p", 5)
    connack(again)
    again.send(Publish("", b"2", properties=Properties(topic_alias=1)))
    assert bare(again.received()) == [Disconnect(ReasonCode.PROTOCOL_ERROR)]


def test_other_packets_are_not_held_back_by_a_full_send_quota() -> None:
    """MQTT-3.3.4-10, MQTT-4.9.0-3, MQTT-3.12.4-1; 3.1.1: MQTT-3.12.4-1."""
    broker, _ = make_broker()
    sub = connect(broker, "s", 5, properties=Properties(receive_maximum=1))
    connack(sub)
    subscribe(sub, "t", qos=1)
    pub = connect(broker, "p", 5)
    pub.send(Publish("t", b"1", 1, packet_id=1), Publish("t", b"2", 1, packet_id=2))
    assert len(publishes(sub)) == 1  # the quota is spent
    sub.send(PingReq(), Subscribe(2, [SubscriptionRequest("u", 0)]), Unsubscribe(3, ["u"]))
    assert sub.received() == [PingResp(), SubAck(2, [0]), UnsubAck(3, [0])]


def test_a_subscription_to_the_same_filter_replaces_the_old_one() -> None:
    """MQTT-3.8.4-3, MQTT-3.8.4-4; 3.1.1: MQTT-3.8.4-3."""
    broker, _ = make_broker()
    pub = connect(broker, "p", 5)
    pub.send(Publish("t", b"retained", retain=True))
    for version in (4, 5):
        sub = connect(broker, f"s{version}", version)
        connack(sub)
        first = subscribe(sub, "t", qos=0)
        second = subscribe(sub, "t", qos=1, pid=2)
        assert [p.payload for p in first + second if isinstance(p, Publish)] == [
            b"retained", b"retained"]  # re-sent on the replacing subscription
        pub.send(Publish("t", b"once", 1, packet_id=7))
        (got,) = publishes(sub)
        assert (got.payload, got.qos) == (b"once", 1)  # one subscription, at the new QoS


def test_unsubscribe_stops_new_messages_and_finishes_started_ones() -> None:
    """MQTT-3.10.4-1, MQTT-3.10.4-2, MQTT-3.10.4-3, MQTT-3.10.4-4, MQTT-3.10.4-5;
    3.1.1: MQTT-3.10.4-1, -2, -3."""
    for version in (4, 5):
        broker, _ = make_broker()
        sub = connect(broker, "s", version)
        connack(sub)
        subscribe(sub, "t/+", qos=1)
        pub = connect(broker, "p", version)
        pub.send(Publish("t/a", b"started", 1, packet_id=1))
        (started,) = publishes(sub)
        sub.send(Unsubscribe(4, ["t/a", "t/#"]))  # neither is "t/+", character by character
        assert isinstance(sub.received()[0], UnsubAck)
        pub.send(Publish("t/b", b"still subscribed", 1, packet_id=2))
        assert [p.payload for p in publishes(sub)] == [b"still subscribed"]
        sub.send(Unsubscribe(5, ["t/+"]))
        sub.received()
        pub.send(Publish("t/c", b"after", 1, packet_id=3))
        assert publishes(sub) == []
        sub.send(PubAck(started.packet_id))  # the one started before still completes
        assert sub.received() == []


def persistent_subscriber(version: int, qos: int) -> tuple[Any, MemoryClient]:
    """A broker and a persistent session subscribed to "t" at ``qos``."""
    broker, _ = make_broker()
    sub = connect(broker, "s", version, clean_start=False, properties=V5_SESSION)
    connack(sub)
    subscribe(sub, "t", qos=qos)
    return broker, sub


def test_qos1_sender_and_receiver_rules() -> None:
    """MQTT-4.3.2-1, MQTT-4.3.2-3, MQTT-4.3.2-4, MQTT-4.3.2-5; 3.1.1: MQTT-4.3.2-1. MQTT-2.2.1-4."""
    for version in (4, 5):
        broker, sub = persistent_subscriber(version, 1)
        pub = connect(broker, "p", version)
        connack(pub)
        pub.send(Publish("t", b"one", 1, packet_id=9))
        assert pub.received() == [PubAck(9)]
        pub.send(Publish("t", b"two", 1, packet_id=9))  # the same id again: a new message
        assert pub.received() == [PubAck(9)]
        first, second = publishes(sub)
        assert first.packet_id != second.packet_id and 0 not in (first.packet_id,
                                                               second.packet_id)
        sub.drop()  # unacknowledged: both are sent again
        back = connect(broker, "s", version, clean_start=False, properties=V5_SESSION)
        connack(back)
        assert [(p.payload, p.dup) for p in publishes(back)] == [(b"one", True), (b"two", True)]


def test_qos2_sender_rules() -> None:
    """MQTT-4.3.3-1, MQTT-4.3.3-3, MQTT-4.3.3-4, MQTT-4.3.3-5; 3.1.1: MQTT-4.3.3-1. MQTT-4.3.3-6."""
    for version in (4, 5):
        broker, sub = persistent_subscriber(version, 2)
        connect(broker, "p", version).send(Publish("t", b"x", 2, packet_id=3))
        (out,) = publishes(sub)
        assert out.qos == 2 and out.packet_id != 0
        sub.send(PubRec(out.packet_id))
        assert sub.received() == [PubRel(out.packet_id)]
        sub.drop()  # the PUBREL is unacknowledged: sent again, the PUBLISH is not
        back = connect(broker, "s", version, clean_start=False, properties=V5_SESSION)
        connack(back)
        assert back.received() == [PubRel(out.packet_id)]
        back.send(PubComp(out.packet_id))
        back.drop()
        done = connect(broker, "s", version, clean_start=False, properties=V5_SESSION)
        connack(done)
        assert done.received() == []


def test_qos2_receiver_rules() -> None:
    """MQTT-4.3.3-9, MQTT-4.3.3-11, MQTT-4.3.3-12, MQTT-4.3.3-13."""
    broker, clock = make_broker()
    sub = connect(broker, "s", 5)
    connack(sub)
    subscribe(sub, "t", qos=0)
    pub = connect(broker, "p", 5)
    connack(pub)
    text = Properties(payload_format_indicator=1)
    pub.send(Publish("t", b"\xff", 2, packet_id=4, properties=text))
    assert pub.received() == [PubRec(4, ReasonCode.PAYLOAD_FORMAT_INVALID)]
    pub.send(Publish("t", b"valid", 2, packet_id=4))  # after a failed PUBREC: a new message
    assert pub.received() == [PubRec(4)]
    expiring = Properties(message_expiry_interval=1)
    pub.send(Publish("t", b"short-lived", 2, packet_id=5, properties=expiring))
    assert pub.received() == [PubRec(5)]
    clock.advance(5)  # expired meanwhile: the handshake still completes
    pub.send(PubRel(4), PubRel(5))
    assert pub.received() == [PubComp(4), PubComp(5)]
    pub.send(Publish("t", b"again", 2, packet_id=4))  # after PUBCOMP: new again
    assert pub.received() == [PubRec(4)]
    assert [p.payload for p in publishes(sub)] == [b"valid", b"short-lived", b"again"]


def test_a_sent_qos2_message_does_not_expire() -> None:
    """MQTT-4.3.3-7."""
    broker, clock = make_broker()
    sub = connect(broker, "s", 5, clean_start=False, properties=V5_SESSION)
    connack(sub)
    subscribe(sub, "t", qos=2)
    connect(broker, "p", 5).send(Publish("t", b"x", 2, packet_id=1,
                                         properties=Properties(message_expiry_interval=2)))
    assert len(publishes(sub)) == 1  # sent, not yet acknowledged
    sub.drop()
    clock.advance(60)
    back = connect(broker, "s", 5, clean_start=False, properties=V5_SESSION)
    connack(back)
    assert [(p.payload, p.dup) for p in publishes(back)] == [(b"x", True)]


def test_a_refused_delivery_is_not_retransmitted() -> None:
    """MQTT-4.4.0-2."""
    broker, _ = make_broker()
    sub = connect(broker, "s", 5, clean_start=False, properties=V5_SESSION)
    connack(sub)
    subscribe(sub, "t", qos=2)
    pub = connect(broker, "p", 5)
    pub.send(Publish("t", b"1", 1, packet_id=1), Publish("t", b"2", 2, packet_id=2))
    one, two = publishes(sub)
    sub.send(PubAck(one.packet_id, ReasonCode.UNSPECIFIED_ERROR),
             PubRec(two.packet_id, ReasonCode.UNSPECIFIED_ERROR))
    assert sub.received() == []  # no PUBREL after a failed PUBREC
    sub.drop()
    back = connect(broker, "s", 5, clean_start=False, properties=V5_SESSION)
    connack(back)
    assert back.received() == []


def test_messages_of_a_topic_keep_their_order_in_mqtt5() -> None:
    """MQTT-4.6.0-5, MQTT-4.6.0-6, MQTT-3.8.4-8."""
    broker, _ = make_broker(max_inflight_messages=2)
    sub = connect(broker, "s", 5)
    connack(sub)
    subscribe(sub, "t", qos=1)
    pub = connect(broker, "p", 5)
    for i in range(6):
        pub.send(Publish("t", bytes([i]), i % 2, packet_id=i + 1 if i % 2 else 0))
    got = []
    while len(got) < 6:
        batch = publishes(sub)
        assert batch, got
        got += batch
        for p in batch:
            if p.qos:
                sub.send(PubAck(p.packet_id))
    assert [p.payload for p in got] == [bytes([i]) for i in range(6)]
    assert [p.qos for p in got] == [0, 1, 0, 1, 0, 1]  # the minimum of message and grant


def test_no_normalization_when_matching() -> None:
    """MQTT-4.7.3-4; 3.1.1: MQTT-4.7.3-4."""
    broker, _ = make_broker()
    sub = connect(broker, "s", 5)
    connack(sub)
    subscribe(sub, "caf\u00e9", "Caf\u00e9/#", qos=0)  # precomposed é
    pub = connect(broker, "p", 5)
    pub.send(Publish("cafe\u0301", b"decomposed"), Publish("CAF\u00c9", b"other case"),
             Publish("caf\u00e9", b"same"))
    assert [p.payload for p in publishes(sub)] == [b"same"]


def test_shared_subscription_members_keep_their_messages() -> None:
    """MQTT-4.8.2-3, MQTT-4.8.2-4, MQTT-4.8.2-5."""
    broker, _ = make_broker()
    member = connect(broker, "m", 5, clean_start=False, properties=V5_SESSION)
    connack(member)
    subscribe(member, "$share/g/t", qos=1)
    other = connect(broker, "o", 5)
    connack(other)
    subscribe(other, "$share/g/t", qos=0)
    pub = connect(broker, "p", 5)
    pub.send(Publish("t", b"1", 1, packet_id=1), Publish("t", b"2", 1, packet_id=2))
    (to_member,) = publishes(member)
    (to_other,) = publishes(other)
    assert (to_member.qos, to_other.qos) == (1, 0)  # each member's granted QoS
    member.drop()  # unacknowledged: kept for the member, not given to the other one
    assert publishes(other) == []
    back = connect(broker, "m", 5, clean_start=False, properties=V5_SESSION)
    connack(back)
    assert [(p.payload, p.dup) for p in publishes(back)] == [(to_member.payload, True)]


def test_no_auth_packets_without_an_authentication_method() -> None:
    """MQTT-4.12.0-6."""
    broker, _ = make_broker()
    client = connect(broker, "c", 5)
    ack = connack(client)
    assert ack.properties.authentication_method is None
    assert ack.properties.authentication_data is None


# Reason codes each packet may carry from a server (MQTT 5.0 3.2.2.2, 3.4.2.1, 3.5.2.1,
# 3.6.2.1, 3.7.2.1, 3.14.2.1, 3.15.2.1).
_ALLOWED = {
    ConnAck: {0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C,
              0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F},
    PubAck: {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99},
    PubRec: {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99},
    PubRel: {0x00, 0x92},
    PubComp: {0x00, 0x92},
    Disconnect: {0x00, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93,
                 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0,
                 0xA1, 0xA2},
}


def test_every_reason_code_sent_is_one_the_packet_may_carry() -> None:
    """MQTT-3.2.2-8, MQTT-3.4.2-1, MQTT-3.5.2-1, MQTT-3.6.2-1, MQTT-3.7.2-1, MQTT-3.14.2-1."""
    sent = []

    def run(broker_options: dict[str, object], *packets: object, **connect_kw: object) -> None:
        broker, clock = make_broker(**broker_options)
        client = connect(broker, "c", 5, **connect_kw)  # type: ignore[arg-type]
        for packet in packets:
            client.send(packet)  # type: ignore[arg-type]
        clock.advance(1000)
        sent.extend(client.received())

    text = Properties(payload_format_indicator=1)
    run({}, Publish("t", b"x", 1, packet_id=1), Publish("t", b"x", 2, packet_id=2), PubRel(2),
        PubRel(9), Publish("t", b"\xff", 1, packet_id=3, properties=text),
        Publish("t", b"\xff", 2, packet_id=4, properties=text), Disconnect())
    run({}, properties=Properties(authentication_method="nope"))
    run({"max_qos": 1}, will=Will("w", b"x", 2))
    run({"retain_available": False}, will=Will("w", b"x", retain=True))
    run({}, will=Will("w", b"\xff", properties=text))
    run({}, Publish("", b"x", properties=Properties(topic_alias=99)))
    run({}, Publish("", b"x", properties=Properties(topic_alias=1)))
    run({"wildcard_subscription_available": False}, Subscribe(1, [SubscriptionRequest("#")]))
    run({}, Connect("again", 5))
    run({}, keep_alive=5)
    for packet in sent:
        allowed = _ALLOWED.get(type(packet))
        if allowed is not None:
            assert packet.reason_code in allowed, packet  # type: ignore[attr-defined]
    kinds = {type(p) for p in sent}
    assert {ConnAck, PubAck, PubRec, PubComp, Disconnect} <= kinds


def test_a_normal_disconnect_discards_the_will() -> None:
    """MQTT-3.14.4-3."""
    broker, _ = make_broker()
    watcher = connect(broker, "w", 5)
    connack(watcher)
    subscribe(watcher, "will", qos=0)
    client = connect(broker, "c", 5, will=Will("will", b"bye"))
    connack(client)
    client.send(Disconnect(ReasonCode.SUCCESS))
    assert publishes(watcher) == []


def test_the_session_lives_while_connected_whatever_its_expiry() -> None:
    """MQTT-4.1.0-1."""
    broker, clock = make_broker()
    client = connect(broker, "c", 5, keep_alive=0,
                     properties=Properties(session_expiry_interval=1))
    connack(client)
    subscribe(client, "t", qos=0)
    clock.advance(3600)  # far beyond the expiry interval, but still connected
    client.send(PingReq())
    client.received()
    connect(broker, "p", 5).send(Publish("t", b"still here"))
    assert [p.payload for p in publishes(client)] == [b"still here"]


def test_a_refused_shared_delivery_is_not_given_to_another_member() -> None:
    """MQTT-4.8.2-6."""
    broker, _ = make_broker()
    members = []
    for name in ("a", "b"):
        member = connect(broker, name, 5)
        connack(member)
        subscribe(member, "$share/g/t", qos=1)
        members.append(member)
    connect(broker, "p", 5).send(Publish("t", b"x", 1, packet_id=1))
    received = [(member, publishes(member)) for member in members]
    ((chosen, (got,)),) = [(member, got) for member, got in received if got]
    chosen.send(PubAck(got.packet_id, ReasonCode.UNSPECIFIED_ERROR))
    assert all(publishes(member) == [] for member in members)


def test_client_ids_of_1_to_23_alphanumerics_are_allowed() -> None:
    """MQTT-3.1.3-5; 3.1.1: MQTT-3.1.3-5."""
    broker, _ = make_broker()
    for version in (4, 5):
        for client_id in ("a", "0123456789abcdefghijKLM"):
            client = connect(broker, client_id, version)
            assert connack(client).reason_code == 0


def test_a_3_1_1_connection_without_will_publishes_none() -> None:
    """3.1.1: MQTT-3.1.2-12."""
    broker, _ = make_broker()
    watcher = connect(broker, "w")
    subscribe(watcher, "#", qos=0)
    client = connect(broker, "c")
    connack(client)
    client.drop()
    assert publishes(watcher) == []


def test_a_3_1_1_takeover_closes_the_first_connection() -> None:
    """3.1.1: MQTT-3.1.4-2, 3.1.1: MQTT-3.1.3-2."""
    broker, _ = make_broker()
    first = connect(broker, "c", 4, clean_start=False)
    connack(first)
    second = connect(broker, "c", 4, clean_start=False)
    assert first.sink.closed and first.received() == []  # 3.1.1 has no DISCONNECT to send
    assert connack(second).session_present


def test_nothing_after_a_refused_3_1_1_connect_is_processed() -> None:
    """3.1.1: MQTT-3.1.4-5, 3.1.1: MQTT-3.1.4-3 (only a valid CONNECT is processed)."""
    broker, _ = make_broker(allow_anonymous=False)
    watcher_broker_sessions = dict(broker.sessions)
    client = MemoryClient(broker, 4)
    client.send(Connect("c", 4, clean_start=False),
                Subscribe(1, [SubscriptionRequest("t")]))
    assert client.received() == [ConnAck(False, 5)] and client.sink.closed
    assert broker.sessions == watcher_broker_sessions  # no session made, nothing subscribed


def test_a_malformed_3_1_1_connect_is_closed_without_connack() -> None:
    """3.1.1: MQTT-3.2.2-6, 3.1.1: MQTT-3.1.4-1, 3.1.1: MQTT-3.1.2-3."""
    broker, _ = make_broker()
    client = MemoryClient(broker, 4)
    client.send_raw(b"\x10\x0d\x00\x04MQTT\x04\x03\x00\x3c\x00\x01c")  # reserved flag set
    assert client.received() == [] and client.sink.closed


def test_overlapping_subscriptions_in_3_1_1() -> None:
    """3.1.1: MQTT-3.3.5-1."""
    broker, _ = make_broker()
    sub = connect(broker, "s")
    subscribe(sub, "a/+", qos=0)
    subscribe(sub, "a/#", qos=2, pid=2)
    connect(broker, "p").send(Publish("a/b", b"x", 2, packet_id=1))
    assert [(p.payload, p.qos) for p in publishes(sub)] == [(b"x", 2)]


def test_unsubscribe_several_filters_in_3_1_1() -> None:
    """3.1.1: MQTT-3.10.4-6, 3.1.1: MQTT-2.3.1-7."""
    broker, _ = make_broker()
    sub = connect(broker, "s")
    subscribe(sub, "a", "b", "c", qos=0)
    sub.send(Unsubscribe(7, ["a", "c"]))
    assert sub.received() == [UnsubAck(7)]
    connect(broker, "p").send(Publish("a", b"1"), Publish("b", b"2"), Publish("c", b"3"))
    assert [p.payload for p in publishes(sub)] == [b"2"]


def test_the_forwarded_expiry_never_exceeds_the_one_received() -> None:
    """MQTT-3.3.2-6, at a clock reading where (t + 3600) - t is 3600.000000000001."""
    broker, clock = make_broker()
    clock.now = 5660.148
    sub = connect(broker, "s", 5)
    connack(sub)
    subscribe(sub, "t", qos=1)
    connect(broker, "p", 5).send(Publish("t", b"x", 1, packet_id=1, properties=Properties(
        message_expiry_interval=3600)))
    (got,) = publishes(sub)
    assert got.properties.message_expiry_interval == 3600


def test_reason_strings_say_why_within_the_clients_maximum_packet_size() -> None:
    """MQTT-3.2.2-19, MQTT-3.14.2-3, MQTT-3.1.2-29 (allowed on CONNACK and DISCONNECT)."""
    broker, _ = make_broker()
    # 16 bytes: room for the accepting CONNACK (MQTT-3.1.2-24), not for a Reason String.
    for limit, expect_reason in ((None, True), (16, False)):
        props = Properties(maximum_packet_size=limit, request_problem_information=0)
        client = connect(broker, "c", 5, properties=props)
        connack(client)
        client.send(Connect("c", 5))  # a second CONNECT: a protocol error
        (disconnect,) = client.received()
        assert isinstance(disconnect, Disconnect)
        assert disconnect.reason_code == ReasonCode.PROTOCOL_ERROR
        reason = disconnect.properties.reason_string
        assert (reason or "").startswith("protocol error: second CONNECT") == expect_reason
        assert limit is None or len(disconnect.encode(5)) <= limit
        refused = connect(broker, "d", 5, properties=Properties(
            maximum_packet_size=limit, authentication_method="nope"))
        (ack,) = refused.received()
        assert isinstance(ack, ConnAck) and ack.reason_code == ReasonCode.BAD_AUTHENTICATION_METHOD
        assert (ack.properties.reason_string is not None) == expect_reason
        assert limit is None or len(ack.encode(5)) <= limit
