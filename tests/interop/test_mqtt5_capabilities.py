"""MQTT 5 capabilities as paho-mqtt and mosquitto_sub -V 5 see them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from paho_client import Paho
from support import WAIT, broker_with_config

CONFIG = """
wildcard_subscription_available = false
shared_subscription_available = false
response_information = "replies/"
"""


def test_paho_sees_the_capabilities_and_is_disconnected_for_a_wildcard(tmp_path: Path) -> None:
    with broker_with_config(tmp_path, CONFIG) as broker:
        client = Paho(broker.port, mqtt.MQTTv5)
        props = Properties(PacketTypes.CONNECT)
        props.RequestResponseInformation = 1
        client.client.connect("127.0.0.1", broker.port, properties=props)
        client.client.loop_start()
        assert client.connected.wait(WAIT)
        ack = client.connack_properties
        assert ack.ResponseInformation == "replies/"
        assert ack.WildcardSubscriptionAvailable == 0
        assert ack.SharedSubscriptionAvailable == 0
        assert ack.ReceiveMaximum == 20
        client.client.subscribe("sensors/#", 1)
        assert client.disconnected.wait(WAIT)
        assert client.disconnect_reason == 0xA2  # Wildcard Subscriptions not supported
        client.client.loop_stop()


def test_mosquitto_sub_is_told_why(tmp_path: Path) -> None:
    with broker_with_config(tmp_path, CONFIG) as broker:
        result = subprocess.run(
            ["mosquitto_sub", "-V", "5", "-d", "-h", "127.0.0.1", "-p", str(broker.port),
             "-t", "$share/g/t", "-W", "5"], capture_output=True, text=True, timeout=WAIT)
        assert "Received DISCONNECT (158)" in result.stdout  # 0x9E
        broker.wait_for_log(r"shared subscriptions are not available")
