"""MQTT 5 features end to end with paho-mqtt's MQTTv5 client and mosquitto_pub/sub -V 5."""

from __future__ import annotations

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from test_mosquitto_clients import mosquitto_pub, start_sub, wait_subscribed

from paho_client import Paho
from support import WAIT, BrokerProcess


def v5(port: int, client_id: str) -> Paho:
    return Paho(port, mqtt.MQTTv5, client_id).connect()


def test_application_properties_expiry_and_subscription_ids_with_paho(
        broker: BrokerProcess) -> None:
    sub = v5(broker.port, "props-sub")
    props = Properties(PacketTypes.SUBSCRIBE)
    props.SubscriptionIdentifier = 42
    sub.subscribed.clear()
    sub.client.subscribe("app/#", 1, properties=props)
    assert sub.subscribed.wait(WAIT)
    pub = v5(broker.port, "props-pub")
    publish = Properties(PacketTypes.PUBLISH)
    publish.PayloadFormatIndicator = 1
    publish.ContentType = "application/json"
    publish.ResponseTopic = "replies/props"
    publish.CorrelationData = b"\x01\x02"
    publish.MessageExpiryInterval = 3600
    publish.UserProperty = [("z", "1"), ("a", "2"), ("z", "3")]
    pub.client.publish("app/x", b"{}", 1, properties=publish).wait_for_publish(WAIT)
    message = sub.get()
    got = message.properties
    assert (got.PayloadFormatIndicator, got.ContentType, got.ResponseTopic,
            got.CorrelationData) == (1, "application/json", "replies/props", b"\x01\x02")
    assert got.UserProperty == [("z", "1"), ("a", "2"), ("z", "3")]
    assert 3590 <= got.MessageExpiryInterval <= 3600
    assert got.SubscriptionIdentifier == [42]


def test_shared_subscription_no_local_and_retain_options_with_paho(
        broker: BrokerProcess) -> None:
    members = [v5(broker.port, f"member-{i}") for i in range(2)]
    for member in members:
        member.subscribe("$share/workers/jobs", 1)
    pub = v5(broker.port, "jobs-pub")
    for i in range(4):
        pub.publish("jobs", f"job {i}".encode(), 1)
    shares = [[member.get().payload for _ in range(2)] for member in members]
    assert sorted(shares[0] + shares[1]) == [f"job {i}".encode() for i in range(4)]
    # No Local: a client's own messages do not come back to it.
    loner = v5(broker.port, "loner")
    loner.subscribed.clear()
    loner.client.subscribe("echo", options=SubscribeOptions(qos=1, noLocal=True))
    assert loner.subscribed.wait(WAIT)
    loner.publish("echo", b"mine", 1)
    pub.publish("echo", b"theirs", 1)
    assert loner.get().payload == b"theirs"
    # Retain Handling 2: no retained messages at subscribe; Retain As Published keeps RETAIN.
    pub.publish("state", b"kept", 1, retain=True)
    watcher = v5(broker.port, "watcher")
    watcher.subscribed.clear()
    watcher.client.subscribe("state", options=SubscribeOptions(
        qos=1, retainAsPublished=True, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND))
    assert watcher.subscribed.wait(WAIT)
    pub.publish("state", b"new", 1, retain=True)
    message = watcher.get()
    assert (message.payload, message.retain) == (b"new", True)


def test_a_topic_alias_from_paho(broker: BrokerProcess) -> None:
    sub = v5(broker.port, "alias-sub")
    sub.subscribe("long/topic/name", 1)
    pub = v5(broker.port, "alias-pub")
    first = Properties(PacketTypes.PUBLISH)
    first.TopicAlias = 3
    pub.client.publish("long/topic/name", b"1", 1, properties=first).wait_for_publish(WAIT)
    pub.client.publish("", b"2", 1, properties=first).wait_for_publish(WAIT)
    assert [(m.topic, m.payload) for m in (sub.get(), sub.get())] == [
        ("long/topic/name", b"1"), ("long/topic/name", b"2")]


def test_mqtt5_properties_through_mosquitto_tools(broker: BrokerProcess) -> None:
    sub = start_sub(broker.port, "-V", "5", "-q", "1", "-t", "tools/#", "-C", "1",
                    "-D", "subscribe", "subscription-identifier", "7",
                    "-F", "%t|%C|%R|%P|%S|%p")
    wait_subscribed(sub)
    mosquitto_pub(broker.port, "-V", "5", "-q", "1", "-t", "tools/a", "-m", "hello",
                  "-D", "publish", "content-type", "text/plain",
                  "-D", "publish", "response-topic", "tools/replies",
                  "-D", "publish", "user-property", "k", "v",
                  "-D", "publish", "message-expiry-interval", "60")
    out, _ = sub.communicate(timeout=WAIT)
    assert "tools/a|text/plain|tools/replies|k:v|7|hello" in out


def test_shared_subscriptions_with_mosquitto_sub(broker: BrokerProcess) -> None:
    subs = [start_sub(broker.port, "-V", "5", "-q", "1", "-t", "$share/g/shared", "-C", "2")
            for _ in range(2)]
    for sub in subs:
        wait_subscribed(sub)
    for i in range(4):
        mosquitto_pub(broker.port, "-V", "5", "-q", "1", "-t", "shared", "-m", f"m{i}")
    outputs = [sub.communicate(timeout=WAIT)[0] for sub in subs]
    lines = sorted(line for out in outputs for line in out.splitlines()
                   if line.startswith("m"))
    assert lines == ["m0", "m1", "m2", "m3"]  # each message once, spread over both
