"""Black-box tests with raw packets: protocol violations get the spec's answer, then a close."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from culex.protocol import (
    ConnAck,
    Connect,
    Disconnect,
    PingReq,
    PingResp,
    Publish,
    ReasonCode,
)

from support import RawClient, bare, running_broker


def connected(port: int, version: int, client_id: str = "raw", **kw: object) -> RawClient:
    client = RawClient(port, version)
    client.send(Connect(client_id, version, **kw))  # type: ignore[arg-type]
    ack = client.recv_packet()
    assert isinstance(ack, ConnAck) and ack.reason_code == 0
    return client


def still_serving(port: int) -> None:
    client = connected(port, 4, "healthy")
    client.send(PingReq())
    assert client.recv_packet() == PingResp()
    client.close()


@pytest.mark.parametrize(("wire", "reason"), [
    (b"\x36\x05\x00\x01a\x00\x01", ReasonCode.MALFORMED_PACKET),         # QoS 3
    (b"\x30\x05\x00\x02\xc0\xaf\x00", ReasonCode.MALFORMED_PACKET),      # overlong UTF-8
    (b"\x30\x06\x00\x03\xed\xa0\x80\x00", ReasonCode.MALFORMED_PACKET),  # surrogate
    (b"\x30\x05\x00\x02a+\x00", ReasonCode.TOPIC_NAME_INVALID),          # wildcard
    (b"\x30\x03\x00\x00\x00", ReasonCode.PROTOCOL_ERROR),  # empty topic, no alias (3.3.2.1)
    (b"\x60\x02\x00\x01", ReasonCode.MALFORMED_PACKET),                  # PUBREL flags
    (b"\x20\x02\x00\x00", ReasonCode.PROTOCOL_ERROR),                    # CONNACK to server
    (b"\xf0\x00", ReasonCode.PROTOCOL_ERROR),                            # AUTH without method
    (b"\x82\x03\x00\x01\x00", ReasonCode.PROTOCOL_ERROR),                # SUBSCRIBE, no filter
])
def test_v5_violation_gets_disconnect_with_reason(broker: object, wire: bytes,
                                                  reason: ReasonCode) -> None:
    """MQTT-4.13.1-1, MQTT-3.14.4-1, -2, MQTT-4.13.2-1."""
    port = broker.port  # type: ignore[attr-defined]
    client = connected(port, 5)
    client.send_raw(wire)
    assert bare(client.expect_closed()) == [Disconnect(reason)]
    still_serving(port)


@pytest.mark.parametrize("wire", [
    b"\x36\x05\x00\x01a\x00\x01",
    b"\x30\x05\x00\x02\xc0\xaf\x00",
    b"\x30\x05\x00\x02a#\x00",
    b"\xf0\x00",
    b"\x30\xff\xff\xff\xff\x01",  # remaining length of five bytes
])
def test_v3_violation_closes_the_connection(broker: object, wire: bytes) -> None:
    """3.1.1: MQTT-4.8.0-1."""
    port = broker.port  # type: ignore[attr-defined]
    client = connected(port, 4)
    client.send_raw(wire)
    assert client.expect_closed() == []
    still_serving(port)


def test_first_packet_not_connect(broker: object) -> None:
    """MQTT-3.14.0-1 (no DISCONNECT before a CONNACK)."""
    client = RawClient(broker.port)  # type: ignore[attr-defined]
    client.send(Publish("t", b"x"))
    assert client.expect_closed() == []  # MQTT-3.1.0-1


def test_unsupported_protocol_level(broker: object) -> None:
    """MQTT-3.1.2-2."""
    client = RawClient(broker.port)  # type: ignore[attr-defined]
    client.send_raw(b"\x10\x0d\x00\x04MQTT\x07\x02\x00\x3c\x00\x01c")
    client.sock.settimeout(10)
    data = b""
    while chunk := client.sock.recv(100):
        data += chunk
    assert data == b"\x20\x02\x00\x01"  # MQTT-3.1.2-2 (3.1.1), then closed


def test_unknown_protocol_name(broker: object) -> None:
    """MQTT-3.1.2-1; 3.1.1: MQTT-3.1.2-1."""
    client = RawClient(broker.port)  # type: ignore[attr-defined]
    client.send_raw(b"\x10\x0d\x00\x04HTTP\x04\x02\x00\x3c\x00\x01c")
    assert client.expect_closed() == []


def test_garbage_then_broker_still_serves(broker: object) -> None:
    port = broker.port  # type: ignore[attr-defined]
    client = RawClient(port)
    client.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.expect_closed() == []
    still_serving(port)


@pytest.mark.parametrize("version", [4, 5])
def test_keep_alive_over_the_wire(broker: object, version: int) -> None:
    client = connected(broker.port, version, keep_alive=1)  # type: ignore[attr-defined]
    packets = client.expect_closed(timeout=5)
    assert bare(packets) == ([Disconnect(ReasonCode.KEEP_ALIVE_TIMEOUT)] if version == 5 else [])


def _config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "culex.toml"
    path.write_text(text)
    return str(path)


def test_oversized_packet_refused_from_its_header(tmp_path: Path) -> None:
    with running_broker("--config", _config(tmp_path, "max_packet_size = 1000\n")) as broker:
        client = RawClient(broker.port, 5)
        client.send(Connect("big", 5))
        ack = client.recv_packet()
        assert isinstance(ack, ConnAck) and ack.properties.maximum_packet_size == 1000
        # Announce a 2000-byte PUBLISH but send only its first bytes: the broker must not
        # wait for the body.
        client.send_raw(b"\x30\xd0\x0f\x00\x01t")
        assert bare(client.expect_closed()) == [Disconnect(ReasonCode.PACKET_TOO_LARGE)]
        broker.wait_for_log(r"disconnected: client big .*packet_too_large, 0x95")


def test_connect_timeout_and_max_connections(tmp_path: Path) -> None:
    text = "connect_timeout = 0.5\nmax_connections = 1\n"
    with running_broker("--config", _config(tmp_path, text)) as broker:
        silent = RawClient(broker.port)
        refused = RawClient(broker.port)
        assert refused.expect_closed() == []
        broker.wait_for_log(r"max_connections reached")
        assert silent.expect_closed() == []
        broker.wait_for_log(r"no CONNECT in time")


def test_sigterm_tells_v5_clients_and_exits(broker: object) -> None:
    client = connected(broker.port, 5)  # type: ignore[attr-defined]
    broker.proc.send_signal(signal.SIGTERM)  # type: ignore[attr-defined]
    assert bare(client.expect_closed()) == [Disconnect(ReasonCode.SERVER_SHUTTING_DOWN)]
    assert broker.proc.wait(10) == 0  # type: ignore[attr-defined]
