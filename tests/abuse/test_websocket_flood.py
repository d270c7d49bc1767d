"""A subscriber over WebSockets that stops reading, beside a reading one, under a QoS 1 flood
over TCP: the WebSocket sink holds its bounded share, the flood goes on, memory stays bounded."""

from __future__ import annotations

import re
import socket
from pathlib import Path

from culex.protocol import Connect, Subscribe, SubscriptionRequest

from flood import Reader, connected, flood_qos1, qos0_publish_size
from support import WAIT, broker_with_config


def ws_frame(payload: bytes) -> bytes:
    """A masked binary frame, as a client sends (RFC 6455 5.2; the mask may be zero)."""
    assert len(payload) < 126
    return bytes([0x82, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


def stalled_websocket(port: int, client_id: str, topic_filter: str) -> socket.socket:
    """A WebSocket MQTT subscriber that, once subscribed, never reads again."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n")
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(4096)
    assert response.startswith(b"HTTP/1.1 101"), response
    sock.sendall(ws_frame(Connect(client_id, 4).encode(4)))
    sock.sendall(ws_frame(Subscribe(1, [SubscriptionRequest(topic_filter, 0)]).encode(4)))
    received = response.partition(b"\r\n\r\n")[2]
    while len(received) < 2 + 4 + 2 + 5:  # the CONNACK and SUBACK frames
        received += sock.recv(4096)
    return sock


CONFIG = """
[[listener]]
port = 0

[[listener]]
port = 0
protocol = "websockets"
"""


def test_a_stalled_websocket_subscriber_costs_bounded_memory(tmp_path: Path) -> None:
    with broker_with_config(tmp_path, CONFIG) as broker:
        assert broker.proc is not None
        line = broker.wait_for_log(r"listening on 127\.0\.0\.1:\d+ \(WebSockets\)")
        ws_port = int(re.search(r":(\d+) \(WebSockets\)", line).group(1))  # type: ignore[union-attr]
        mqtt_line = broker.wait_for_log(r"listening on 127\.0\.0\.1:\d+ \(MQTT\)")
        port = int(re.search(r":(\d+) \(MQTT\)", mqtt_line).group(1))  # type: ignore[union-attr]
        stalled = stalled_websocket(ws_port, "ws-stalled", "flood/#")
        reader = Reader(connected(port, "reader", ("flood/#", 0)))
        try:
            result = flood_qos1(port, broker.proc.pid, 3.0)
            assert result.acked == result.sent > 10_000
            size = qos0_publish_size("flood/t")
            assert reader.wait_for(result.acked * size, WAIT)
            assert reader.received == result.acked * size
            assert result.rss_growth_kb < 12_000, result
            broker.wait_for_log("dropping messages for client ws-stalled")
        finally:
            reader.stop()
            stalled.close()
