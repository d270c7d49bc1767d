"""Broker semantics checked over real sockets with raw packets, byte-exact where it matters."""

from __future__ import annotations

from typing import Any

import paho.mqtt.client as mqtt

from culex.protocol import (
    ConnAck,
    Connect,
    Disconnect,
    Packet,
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

from paho_client import Paho
from support import BrokerProcess, RawClient


def connect(port: int, client_id: str, version: int = 4, **kw: Any) -> tuple[RawClient, ConnAck]:
    client = RawClient(port, version)
    client.send(Connect(client_id, version, **kw))
    ack = client.recv_packet()
    assert isinstance(ack, ConnAck)
    return client, ack


def subscribe(client: RawClient, *filters: str, qos: int = 1, pid: int = 1,
              props: Properties | None = None) -> Packet:
    client.send(Subscribe(pid, [SubscriptionRequest(f, qos) for f in filters],
                          props or Properties()))
    ack = client.recv_packet()
    assert isinstance(ack, SubAck)
    return ack


def test_assigned_client_identifiers(broker: BrokerProcess) -> None:
    """Over the wire: MQTT-3.1.3-6, -7; 3.1.1: MQTT-3.1.3-6."""
    _, ack = connect(broker.port, "", 5)
    assigned = ack.properties.assigned_client_identifier
    assert ack.reason_code == 0 and assigned
    broker.wait_for_log(rf"connected: client {assigned} ")
    _, ack = connect(broker.port, "", 4, clean_start=True)
    assert ack.reason_code == 0
    _, ack = connect(broker.port, "", 4, clean_start=False)
    assert ack == ConnAck(False, 2)
    broker.wait_for_log(r"refused: .*empty client id")


def test_qos2_resent_before_pubrel_is_delivered_once(broker: BrokerProcess) -> None:
    sub, _ = connect(broker.port, "sub")
    subscribe(sub, "q2", qos=2)
    pub, _ = connect(broker.port, "pub")
    pub.send(Publish("q2", b"once", 2, packet_id=7))
    assert pub.recv_packet() == PubRec(7)
    pub.send(Publish("q2", b"once", 2, dup=True, packet_id=7))  # PUBREC was "lost"
    assert pub.recv_packet() == PubRec(7)
    pub.send(PubRel(7))
    assert pub.recv_packet() == PubComp(7)
    pub.send(Publish("q2", b"next", 0))
    first = sub.recv_packet()
    assert isinstance(first, Publish) and first.payload == b"once"
    second = sub.recv_packet()  # not a second copy of "once"
    assert isinstance(second, Publish) and second.payload == b"next"
    sub.send(PubRec(first.packet_id))
    assert sub.recv_packet() == PubRel(first.packet_id)


def test_unacknowledged_resent_with_dup_after_reconnection(broker: BrokerProcess) -> None:
    sub, _ = connect(broker.port, "dup-sub", clean_start=False)
    subscribe(sub, "d", qos=1)
    pub, _ = connect(broker.port, "dup-pub")
    pub.send(Publish("d", b"m", 1, packet_id=1))
    assert pub.recv_packet() == PubAck(1)
    first = sub.recv_packet()
    assert isinstance(first, Publish) and not first.dup
    sub.close()  # no PUBACK, no DISCONNECT
    broker.wait_for_log(r"disconnected: client dup-sub ")
    back, ack = connect(broker.port, "dup-sub", clean_start=False)
    assert ack.session_present
    assert back.recv_packet() == Publish("d", b"m", 1, dup=True, packet_id=first.packet_id)


def test_overlapping_subscriptions_and_dollar_topics(broker: BrokerProcess) -> None:
    sub, _ = connect(broker.port, "overlap", 5)
    subscribe(sub, "a/#", qos=0, props=Properties(subscription_identifiers=[4]))
    subscribe(sub, "a/+", "#", qos=2, pid=2)
    pub, _ = connect(broker.port, "p5", 5)
    pub.send(Publish("$private/x", b"hidden", 0))
    pub.send(Publish("a/b", b"x", 2, packet_id=3))
    assert pub.recv_packet() == PubRec(3)
    got = sub.recv_packet()  # one copy, highest QoS, the one identifier: nothing for $private
    assert isinstance(got, Publish) and (got.topic, got.qos) == ("a/b", 2)
    assert got.properties.subscription_identifiers == [4]


def test_unsubscribe(broker: BrokerProcess) -> None:
    sub, _ = connect(broker.port, "unsub", 5)
    subscribe(sub, "u/1", "u/2")
    sub.send(Unsubscribe(9, ["u/1", "u/3"]))
    assert sub.recv_packet() == UnsubAck(9, [0, ReasonCode.NO_SUBSCRIPTION_EXISTED])
    pub, _ = connect(broker.port, "unsub-pub")
    pub.send(Publish("u/1", b"gone"), Publish("u/2", b"kept"))
    got = sub.recv_packet()
    assert isinstance(got, Publish) and got.topic == "u/2"


def test_disconnect_with_will_and_normal_disconnect(broker: BrokerProcess) -> None:
    watcher = Paho(broker.port, mqtt.MQTTv5, "watcher").connect()
    watcher.subscribe("wills/#", 1)
    normal, _ = connect(broker.port, "normal", 5, will=Will("wills/normal", b"x"))
    normal.send(Disconnect())
    with_will, _ = connect(broker.port, "w04", 5, will=Will("wills/w04", b"bye", 1))
    with_will.send(Disconnect(ReasonCode.DISCONNECT_WITH_WILL))
    message = watcher.get()
    assert (message.topic, message.payload) == ("wills/w04", b"bye")  # never wills/normal
    watcher.disconnect()


def test_will_delay_over_the_wire(broker: BrokerProcess) -> None:
    watcher = Paho(broker.port, mqtt.MQTTv5, "watcher").connect()
    watcher.subscribe("delayed", 1)
    props = Properties(session_expiry_interval=60)
    will = Will("delayed", b"late", 1, False, Properties(will_delay_interval=1))
    first, _ = connect(broker.port, "dw", 5, clean_start=False, will=will, properties=props)
    first.close()
    broker.wait_for_log(r"disconnected: client dw ")
    message = watcher.get(timeout=10)  # after about one second
    assert message.payload == b"late"
    watcher.disconnect()
