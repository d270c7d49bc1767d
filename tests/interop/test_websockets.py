"""MQTT over WebSockets (section 6 of both specifications): paho-mqtt and MQTT.js over ws://,
and a raw WebSocket client for what the standard clients never do."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from culex.protocol import ConnAck, Connect, Decoder, Packet, PingReq, PingResp

from paho_client import Paho
from support import WAIT, BrokerProcess, broker_with_config

HERE = Path(__file__).parent / "js"
CONFIG = """
[[listener]]
port = 0
protocol = "websockets"
"""


@pytest.fixture
def ws_broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    with broker_with_config(tmp_path, CONFIG) as broker:
        broker.wait_for_log(r"\(WebSockets\)")
        yield broker


@pytest.mark.parametrize("version", [mqtt.MQTTv311, mqtt.MQTTv5])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_paho_over_websockets(ws_broker: BrokerProcess, version: int, qos: int) -> None:
    sub = Paho(ws_broker.port, version, f"ws-sub-{version}-{qos}", transport="websockets")
    sub.connect()
    sub.subscribe("ws/#", qos)
    pub = Paho(ws_broker.port, version, f"ws-pub-{version}-{qos}", transport="websockets")
    pub.connect()
    for i in range(3):
        pub.publish(f"ws/{i}", f"message {i}".encode(), qos)
    got = [sub.get() for _ in range(3)]
    assert [(m.topic, m.payload, m.qos) for m in got] == [
        (f"ws/{i}", f"message {i}".encode(), qos) for i in range(3)]


def test_mqttjs_over_websockets(ws_broker: BrokerProcess) -> None:
    result = subprocess.run(["node", str(HERE / "roundtrip.mjs"), str(ws_broker.port), "5",
                             "1", "0", "ws"], capture_output=True, text=True, timeout=WAIT * 2)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {"topic": f"js/{i}", "payload": f"message {i}", "qos": 1} for i in range(3)]


def _open(port: int, subprotocols: list[str] | None = None) -> ClientConnection:
    return connect(f"ws://127.0.0.1:{port}/", subprotocols=subprotocols  # type: ignore[arg-type]
                   if subprotocols is not None else ["mqtt"], open_timeout=WAIT)


def _packets(ws: ClientConnection, count: int, version: int = 4) -> list[Packet]:
    decoder = Decoder(version=version)
    packets: list[Packet] = []
    while len(packets) < count:
        message = ws.recv(timeout=WAIT)
        assert isinstance(message, bytes)  # MQTT-6.0.0-1 the other way
        decoder.feed(message)
        while (packet := decoder.next_packet()) is not None:
            packets.append(packet)
    return packets


def test_the_subprotocol_is_mqtt(ws_broker: BrokerProcess) -> None:
    """MQTT-6.0.0-4; 3.1.1: MQTT-6.0.0-4."""
    with _open(ws_broker.port, ["other", "mqtt"]) as ws:
        assert ws.subprotocol == "mqtt"
    with pytest.raises(InvalidStatus) as refused:
        _open(ws_broker.port, [])
    assert refused.value.response.status_code == 400


def test_packets_need_not_follow_frame_boundaries(ws_broker: BrokerProcess) -> None:
    """MQTT-6.0.0-2; 3.1.1: MQTT-6.0.0-2."""
    with _open(ws_broker.port) as ws:
        wire = Connect("split", keep_alive=30).encode(4) + PingReq().encode(4)
        ws.send(wire[:5])  # a part of the CONNECT
        ws.send(wire[5:])  # the rest of it and a whole PINGREQ in one message
        assert _packets(ws, 2) == [ConnAck(False, 0), PingResp()]


def test_a_text_frame_closes_the_connection(ws_broker: BrokerProcess) -> None:
    """MQTT-6.0.0-1; 3.1.1: MQTT-6.0.0-1."""
    with _open(ws_broker.port) as ws:
        ws.send(Connect("texter").encode(4))
        assert _packets(ws, 1) == [ConnAck(False, 0)]
        ws.send("\x10\x00")  # a text frame
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=WAIT)
    ws_broker.wait_for_log(r"a WebSocket text frame")
