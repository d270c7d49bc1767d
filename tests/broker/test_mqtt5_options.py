"""MQTT 5 capabilities the server announces and enforces: availability flags, Receive Maximum,
Response Information, Payload Format Indicator. In memory, with a clock that moves when told."""

from __future__ import annotations

import pytest
from test_connection import connack, connect, publishes, subscribe

from culex.protocol import (
    Disconnect,
    Properties,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    ReasonCode,
    SubAck,
    Will,
)

from support import bare, make_broker

NOBODY = ReasonCode.NO_MATCHING_SUBSCRIBERS


def test_connack_announces_what_is_not_available() -> None:
    broker, _ = make_broker(wildcard_subscription_available=False,
                            shared_subscription_available=False,
                            subscription_identifiers_available=False,
                            max_inflight_messages=7)
    props = connack(connect(broker, version=5)).properties
    assert props.wildcard_subscription_available == 0
    assert props.shared_subscription_available == 0
    assert props.subscription_identifier_available == 0
    assert props.receive_maximum == 7


def test_connack_omits_what_is_available() -> None:
    broker, _ = make_broker()
    props = connack(connect(broker, version=5)).properties
    # Absent means available (MQTT 5.0 3.2.2.3.11 to 3.2.2.3.13).
    assert props.wildcard_subscription_available is None
    assert props.shared_subscription_available is None
    assert props.subscription_identifier_available is None
    assert props.receive_maximum == 20


@pytest.mark.parametrize(("option", "request_", "reason"), [
    ("wildcard_subscription_available", {"filters": ["a/+"]},
     ReasonCode.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED),
    ("wildcard_subscription_available", {"filters": ["a/#"]},
     ReasonCode.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED),
    ("shared_subscription_available", {"filters": ["$share/g/a"]},
     ReasonCode.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED),
    ("subscription_identifiers_available",
     {"filters": ["a"], "properties": Properties(subscription_identifiers=[5])},
     ReasonCode.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED),
])
def test_using_what_is_not_available_is_a_protocol_error(
        option: str, request_: dict[str, object], reason: int) -> None:
    broker, _ = make_broker(**{option: False})
    client = connect(broker, version=5)
    connack(client)
    filters = request_.pop("filters")
    assert isinstance(filters, list)
    assert bare(subscribe(client, *filters, **request_)) == [Disconnect(reason)]
    assert client.sink.closed


def test_a_3_1_1_client_gets_a_failed_subscription_instead() -> None:
    """3.1.1: MQTT-3.8.3-2."""
    broker, _ = make_broker(wildcard_subscription_available=False,
                            shared_subscription_available=False)
    client = connect(broker)
    connack(client)
    assert subscribe(client, "a/+", "$share/g/a", "a/b") == [SubAck(1, [0x80, 0x80, 1])]
    assert not client.sink.closed


def test_response_information_only_when_asked() -> None:
    broker, _ = make_broker(response_information="replies/")
    asked = connect(broker, "a", 5, properties=Properties(request_response_information=1))
    assert connack(asked).properties.response_information == "replies/"
    # MQTT-3.1.2-28: 0 (or absent) means the server must not send it.
    for props in (Properties(request_response_information=0), Properties()):
        other = connect(broker, "b", 5, properties=props)
        assert connack(other).properties.response_information is None


def test_receive_maximum_is_enforced_for_qos2() -> None:
    broker, _ = make_broker(max_inflight_messages=2)
    client = connect(broker, version=5)
    connack(client)
    client.send(Publish("t", b"1", qos=2, packet_id=1), Publish("t", b"2", qos=2, packet_id=2))
    assert client.received() == [PubRec(1, NOBODY), PubRec(2, NOBODY)]
    client.send(PubRel(1))
    assert client.received() == [PubComp(1)]
    client.send(Publish("t", b"3", qos=2, packet_id=3))  # two awaiting PUBREL again: fine
    assert client.received() == [PubRec(3, NOBODY)]
    client.send(Publish("t", b"4", qos=2, packet_id=4))  # a third: over the quota
    assert bare(client.received()) == [Disconnect(ReasonCode.RECEIVE_MAXIMUM_EXCEEDED)]


def test_receive_maximum_quota_starts_afresh_with_a_connection() -> None:
    broker, _ = make_broker(max_inflight_messages=1)
    client = connect(broker, "c", 5, clean_start=False,
                     properties=Properties(session_expiry_interval=60))
    connack(client)
    client.send(Publish("t", b"1", qos=2, packet_id=1))
    assert client.received() == [PubRec(1, NOBODY)]
    client.drop()
    again = connect(broker, "c", 5, clean_start=False,
                    properties=Properties(session_expiry_interval=60))
    connack(again)
    again.send(Publish("t", b"2", qos=2, packet_id=2))  # id 1 still awaits its PUBREL
    assert again.received() == [PubRec(2, NOBODY)]


def test_a_payload_that_is_not_utf8_is_refused_when_it_says_it_is() -> None:
    broker, _ = make_broker()
    watcher = connect(broker, "w", 5)
    connack(watcher)
    subscribe(watcher, "t")
    client = connect(broker, "p", 5)
    connack(client)
    text = Properties(payload_format_indicator=1)
    client.send(Publish("t", b"caf\xc3\xa9", qos=1, packet_id=1, properties=text),
                Publish("t", b"\xff\xfe", qos=1, packet_id=2, properties=text),
                Publish("t", b"\xed\xa0\x80", qos=2, packet_id=3, properties=text),  # surrogate
                Publish("t", b"\xff", qos=1, packet_id=4))  # not said to be UTF-8: fine
    assert client.received() == [
        PubAck(1), PubAck(2, ReasonCode.PAYLOAD_FORMAT_INVALID),
        PubRec(3, ReasonCode.PAYLOAD_FORMAT_INVALID), PubAck(4)]
    assert [p.payload for p in publishes(watcher)] == [b"caf\xc3\xa9", b"\xff"]
    client.send(Publish("t", b"\xc0\x80", properties=text))  # QoS 0: only DISCONNECT can tell
    assert bare(client.received()) == [Disconnect(ReasonCode.PAYLOAD_FORMAT_INVALID)]


def test_a_will_that_is_not_utf8_is_refused_when_it_says_it_is() -> None:
    broker, _ = make_broker()
    will = Will("w", b"\xff", properties=Properties(payload_format_indicator=1))
    client = connect(broker, "c", 5, will=will)
    assert connack(client).reason_code == ReasonCode.PAYLOAD_FORMAT_INVALID


def test_topic_aliases_towards_a_client_that_accepts_them() -> None:
    broker, _ = make_broker()
    sub = connect(broker, "s", 5, properties=Properties(topic_alias_maximum=2))
    connack(sub)
    subscribe(sub, "#", qos=1)
    pub = connect(broker, "p", 5)
    connack(pub)
    for topic in ("maison/salon", "maison/salon", "maison/cuisine", "maison/cave", "ab",
                  "maison/cuisine"):
        pub.send(Publish(topic, topic.encode()))
    got = [(p.topic, p.properties.topic_alias, p.payload) for p in publishes(sub)]
    assert got == [
        ("maison/salon", 1, b"maison/salon"),  # taught with the topic; never 0 (MQTT-3.3.2-8)
        ("", 1, b"maison/salon"),  # then used alone
        ("maison/cuisine", 2, b"maison/cuisine"),
        # Never above the client's maximum: MQTT-3.3.2-11, MQTT-3.1.2-26.
        ("maison/cave", None, b"maison/cave"),
        ("ab", None, b"ab"),  # too short to be worth an alias
        ("", 2, b"maison/cuisine"),
    ]


def test_no_topic_aliases_unless_the_client_accepts_them() -> None:
    """MQTT-3.1.2-27."""
    broker, _ = make_broker()
    for props in (Properties(), Properties(topic_alias_maximum=0)):
        sub = connect(broker, "s", 5, properties=props)
        connack(sub)
        subscribe(sub, "#", qos=0)
        pub = connect(broker, "p", 5)
        connack(pub)
        pub.send(Publish("maison/salon", b"1"), Publish("maison/salon", b"2"))
        assert [(p.topic, p.properties.topic_alias) for p in publishes(sub)] == [
            ("maison/salon", None)] * 2


def test_an_alias_is_not_taught_by_a_packet_that_was_not_sent() -> None:
    broker, _ = make_broker()
    sub = connect(broker, "s", 5, properties=Properties(topic_alias_maximum=5,
                                                         maximum_packet_size=64))
    connack(sub)
    subscribe(sub, "#", qos=0)
    pub = connect(broker, "p", 5)
    connack(pub)
    pub.send(Publish("maison/salon", bytes(100)), Publish("maison/salon", b"small"))
    # The first was too large for the client and dropped (MQTT-3.1.2-25): the second must
    # carry the topic itself.
    assert [(p.topic, p.properties.topic_alias) for p in publishes(sub)] == [
        ("maison/salon", 1)]


def test_application_properties_are_forwarded_unaltered() -> None:
    """MQTT-3.3.2-4, MQTT-3.3.2-15, MQTT-3.3.2-16, MQTT-3.3.2-17, MQTT-3.3.2-18,
    MQTT-3.3.2-20; a will's, likewise (MQTT-3.1.3-10)."""
    broker, _ = make_broker()
    sub = connect(broker, "s", 5)
    connack(sub)
    subscribe(sub, "#", qos=1)
    props = Properties(payload_format_indicator=1, content_type="application/json",
                       response_topic="replies/42", correlation_data=b"\x00\x01id",
                       user_properties=[("z", "1"), ("a", "2"), ("z", "3"), ("", "")])
    pub = connect(broker, "p", 5, will=Will("wills/p", b"{}", 1, properties=props))
    connack(pub)
    pub.send(Publish("t", b"{}", qos=1, packet_id=1, properties=props))
    pub.drop()  # the will goes out too
    got = publishes(sub)
    assert [p.topic for p in got] == ["t", "wills/p"]
    for packet in got:
        forwarded = packet.properties
        assert forwarded.payload_format_indicator == 1
        assert forwarded.content_type == "application/json"
        assert forwarded.response_topic == "replies/42"
        assert forwarded.correlation_data == b"\x00\x01id"
        assert forwarded.user_properties == [("z", "1"), ("a", "2"), ("z", "3"), ("", "")]
