"""paho-mqtt 2.x against a real culex, at every protocol version and QoS."""

from __future__ import annotations

import os

import paho.mqtt.client as mqtt
import pytest

from paho_client import VERSIONS, Paho
from support import BrokerProcess


@pytest.mark.parametrize("qos", [0, 1, 2])
@pytest.mark.parametrize("version", list(VERSIONS))
def test_publish_subscribe(broker: BrokerProcess, version: str, qos: int) -> None:
    """Over TCP with a stock client and no extension: MQTT-4.2.0-1; 3.1.1: MQTT-7.1.1-1, 3.1.1:
    MQTT-7.0.0-2."""
    proto = VERSIONS[version]
    sub = Paho(broker.port, proto, f"sub-{version}-{qos}").connect()
    pub = Paho(broker.port, proto, f"pub-{version}-{qos}").connect()
    granted = sub.subscribe("home/+/temp", qos)
    assert [int(getattr(g, "value", g)) for g in granted] == [qos]
    for i in range(5):
        pub.publish(f"home/room{i}/temp", f"{i}".encode(), qos)
    got = [sub.get() for _ in range(5)]
    assert [(m.topic, m.payload, m.qos) for m in got] == [
        (f"home/room{i}/temp", f"{i}".encode(), qos) for i in range(5)]
    pub.disconnect()
    sub.disconnect()


def test_persistent_session_across_reconnection(broker: BrokerProcess) -> None:
    sub = Paho(broker.port, mqtt.MQTTv311, "persistent", clean=False).connect()
    assert sub.session_present is False
    sub.subscribe("p/#", 1)
    sub.disconnect()
    pub = Paho(broker.port, mqtt.MQTTv311, "producer").connect()
    for i in range(3):
        pub.publish("p/x", f"m{i}".encode(), 1)
    back = Paho(broker.port, mqtt.MQTTv311, "persistent", clean=False).connect()
    assert back.session_present is True
    assert [back.get().payload for _ in range(3)] == [b"m0", b"m1", b"m2"]
    back.disconnect()
    pub.disconnect()


def test_v5_session_expiry_and_takeover(broker: BrokerProcess) -> None:
    first = Paho(broker.port, mqtt.MQTTv5, "dup", clean=False).connect(session_expiry=60)
    first.subscribe("x", 1)
    second = Paho(broker.port, mqtt.MQTTv5, "dup", clean=False).connect(session_expiry=60)
    assert second.session_present is True
    assert first.disconnected.wait(10)
    assert first.disconnect_reason == 142  # Session taken over (MQTT-3.1.4-3)
    first.stop()
    broker.wait_for_log(r"disconnected: client dup .*session taken over")
    pub = Paho(broker.port, mqtt.MQTTv5, "pub").connect()
    pub.publish("x", b"to the new one", 1)
    assert second.get().payload == b"to the new one"
    second.disconnect()
    pub.disconnect()


def test_retained_message(broker: BrokerProcess) -> None:
    pub = Paho(broker.port, mqtt.MQTTv311, "r-pub").connect()
    pub.publish("state/door", b"open", 1, retain=True)
    sub = Paho(broker.port, mqtt.MQTTv5, "r-sub").connect()
    sub.subscribe("state/#", 1)
    message = sub.get()
    assert (message.topic, message.payload, message.retain) == ("state/door", b"open", True)
    pub.publish("state/door", b"", 1, retain=True)
    assert sub.get().payload == b""  # the deletion itself is delivered, not retained
    late = Paho(broker.port, mqtt.MQTTv311, "r-late").connect()
    late.subscribe("state/#", 1)
    pub.publish("state/marker", b"m", 1)
    assert late.get().topic == "state/marker"  # nothing retained came before it
    for client in (pub, sub, late):
        client.disconnect()


def test_large_payload(broker: BrokerProcess) -> None:
    payload = os.urandom(16 * 1024 * 1024)
    sub = Paho(broker.port, mqtt.MQTTv311, "big-sub").connect()
    sub.subscribe("big", 1)
    pub = Paho(broker.port, mqtt.MQTTv5, "big-pub").connect()
    pub.publish("big", payload, 1)
    assert sub.get(timeout=60).payload == payload
    sub.disconnect()
    pub.disconnect()


def test_log_lines(broker: BrokerProcess) -> None:
    client = Paho(broker.port, mqtt.MQTTv311, "logged").connect()
    broker.wait_for_log(r"connected: client logged from 127\.0\.0\.1:\d+, MQTT 3\.1\.1")
    client.disconnect()
    broker.wait_for_log(r"disconnected: client logged from 127\.0\.0\.1:\d+: client disconnected")
