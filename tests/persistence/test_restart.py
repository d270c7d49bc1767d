"""Restarts of a real broker process: stopped with SIGTERM, or killed with SIGKILL mid-stream.

What a publisher was told is stored (a PUBACK or a PUBREC) must reach the persistent
subscriber after the restart; QoS 2 messages exactly once; everything in order.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from culex.protocol import ConnAck, Connect, PubAck, PubComp, Publish, PubRec, PubRel

from paho_client import Paho
from support import WAIT, RawClient, broker_env, running_broker


def collect_until(client: Paho, marker: bytes) -> list[mqtt.MQTTMessage]:
    """Messages up to the one whose payload is ``marker``. The marker is published last, at
    QoS 2: paho hands a QoS 2 message over at its PUBREL, which the broker sends after every
    earlier PUBLISH and PUBREL, so every message queued before it has arrived by then."""
    got = []
    while True:
        message = client.get()
        if message.payload == marker:
            return got
        got.append(message)


@pytest.mark.parametrize("durability", ["full", "periodic"])
def test_sigterm_restart_keeps_queues_subscriptions_and_retained(tmp_path: Path,
                                                                 durability: str) -> None:
    # Periodic durability loses nothing on a clean stop either: the store is written then.
    data = str(tmp_path / "data")
    with running_broker("--data-dir", data, "--durability", durability) as broker:
        keeper = Paho(broker.port, client_id="keeper", clean=False).connect()
        keeper.subscribe("q1/#", 1)
        keeper.subscribe("q2/#", 2)
        keeper.disconnect()
        pub = Paho(broker.port).connect()
        for i in range(40):
            pub.publish(f"q{i % 2 + 1}/x", str(i).encode(), qos=i % 2 + 1)
        pub.publish("q1/config", b"retained", qos=1, retain=True)
        pub.disconnect()
    assert broker.proc is not None and broker.proc.returncode == 0
    assert any("stopped" in line for line in broker.lines)
    # Closed cleanly: the write-ahead log has been folded into the database file.
    assert not (tmp_path / "data" / "culex.db-wal").exists()

    with running_broker("--data-dir", data, "--durability", durability) as broker:
        broker.wait_for_log(r"restored 1 sessions \(41 queued")
        keeper = Paho(broker.port, client_id="keeper", clean=False).connect()
        assert keeper.session_present
        Paho(broker.port).connect().publish("q2/x", b"end", qos=2)  # the subscription is there
        got = collect_until(keeper, b"end")
        assert sorted(m.payload for m in got) == sorted(
            [str(i).encode() for i in range(40)] + [b"retained"])
        for qos in (1, 2):  # paho reorders QoS 1 and QoS 2 between them, not within
            numbers = [int(m.payload) for m in got if m.qos == qos and m.payload.isdigit()]
            assert numbers == list(range(qos - 1, 40, 2))
        reader = Paho(broker.port).connect()
        reader.subscribe("q1/config", 1)
        retained = reader.get()
        assert (retained.payload, retained.retain) == (b"retained", True)


class Streamer(threading.Thread):
    """Publishes numbered QoS 1 and QoS 2 messages, 16 in flight, until its connection dies,
    and records which ones the broker acknowledged (PUBACK, or PUBREC for QoS 2)."""

    def __init__(self, port: int, total: int, signal_at: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.total = total
        self.signal_at = signal_at
        self.acked: set[int] = set()
        self.reached = threading.Event()
        self.ended = threading.Event()

    def run(self) -> None:
        try:
            self._stream()
        except (OSError, AssertionError):
            pass  # the broker was killed: the point of the test
        finally:
            self.ended.set()

    def _stream(self) -> None:
        client = RawClient(self.port)
        client.send(Connect("streamer"))
        assert isinstance(client.recv_packet(), ConnAck)
        inflight: dict[int, int] = {}
        seq = 0
        while seq < self.total or inflight:
            while len(inflight) < 16 and seq < self.total:
                pid = seq + 1
                client.send(Publish("stream", str(seq).encode(), qos=1 + seq % 2,
                                    packet_id=pid))
                inflight[pid] = seq
                seq += 1
            packet = client.recv_packet()
            if isinstance(packet, PubAck):
                self.acked.add(inflight.pop(packet.packet_id))
            elif isinstance(packet, PubRec):
                self.acked.add(inflight[packet.packet_id])
                client.send(PubRel(packet.packet_id))
            elif isinstance(packet, PubComp):
                del inflight[packet.packet_id]
            if len(self.acked) >= self.signal_at:
                self.reached.set()


def crash_test_args(tmp_path: Path) -> tuple[str, ...]:
    """A data directory to restart on, and no queue limit: nothing may be dropped."""
    config = tmp_path / "culex.toml"
    config.write_text("max_queued_messages = 0\n")
    return ("--data-dir", str(tmp_path / "data"), "--config", str(config))


def test_kill_9_mid_stream_loses_nothing_acknowledged(tmp_path: Path) -> None:
    args = crash_test_args(tmp_path)
    with running_broker(*args) as broker:
        keeper = Paho(broker.port, client_id="keeper", clean=False).connect()
        keeper.subscribe("stream", 2)
        keeper.subscribe("wills/#", 1)
        keeper.disconnect()
        # A persistent client connected at the crash: its will is due after the restart.
        device = Paho(broker.port, client_id="device", clean=False)
        device.client.will_set("wills/device", b"gone", qos=1)
        device.connect()
        streamer = Streamer(broker.port, total=20_000, signal_at=300)
        streamer.start()
        assert streamer.reached.wait(30), "the stream did not get going"
        broker.kill()  # SIGKILL, mid-stream: no shutdown code runs
        assert streamer.ended.wait(10)
        device.client.loop_stop()
    acked = set(streamer.acked)
    assert 300 <= len(acked) < 20_000

    with running_broker(*args) as broker:
        keeper = Paho(broker.port, client_id="keeper", clean=False).connect()
        assert keeper.session_present
        Paho(broker.port).connect().publish("stream", b"end", qos=2)
        got = collect_until(keeper, b"end")
    stream = [int(m.payload) for m in got if m.topic == "stream"]
    assert acked <= set(stream), f"lost: {sorted(acked - set(stream))[:10]}"
    qos1 = [seq for seq in stream if not seq % 2]
    qos2 = [seq for seq in stream if seq % 2]
    assert qos1 == sorted(qos1) and qos2 == sorted(qos2), "out of order"
    assert len(qos2) == len(set(qos2)), "a QoS 2 message was delivered twice"
    assert [m.payload for m in got if m.topic == "wills/device"] == [b"gone"]


def test_a_damaged_store_is_set_aside_and_the_broker_serves(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "culex.db").write_bytes(b"\x00garbage" * 1000)
    with running_broker("--data-dir", str(data)) as broker:
        line = broker.wait_for_log(r"ERROR the store .* is damaged")
        assert "moved to" in line and "starts with an empty store" in line
        client = Paho(broker.port, client_id="after", clean=False).connect()
        assert client.session_present is False
    assert len(list(data.glob("culex.db.damaged-*"))) == 1


def test_a_data_directory_in_use_is_refused(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    with running_broker("--data-dir", data):
        second = subprocess.run(
            [sys.executable, "-m", "culex", "serve", "--listen", "127.0.0.1:0",
             "--data-dir", data], capture_output=True, text=True, timeout=WAIT,
            env=broker_env(str(tmp_path)))
    assert second.returncode == 2
    assert "in use by another culex process" in second.stderr


def test_no_persistence_keeps_nothing() -> None:
    with running_broker("--no-persistence") as broker:
        broker.wait_for_log(r"persistence: in memory only")
        keeper = Paho(broker.port, client_id="keeper", clean=False).connect()
        keeper.subscribe("t", 1)
        keeper.disconnect()
        assert not (Path(broker.state_home) / "culex").exists()  # no default data directory
    with running_broker("--no-persistence") as broker:
        keeper = Paho(broker.port, client_id="keeper", clean=False).connect()
        assert keeper.session_present is False


def test_kill_9_with_the_subscriber_online_duplicates_no_qos2_message(tmp_path: Path) -> None:
    """Exactly once across a crash while messages are in flight to the subscriber: the packet
    ids it has seen survive, so whatever is resent is resent under the same id."""
    args = crash_test_args(tmp_path)
    with running_broker(*args) as broker:
        keeper = Paho(broker.port, client_id="keeper", clean=False).connect()
        keeper.subscribe("stream", 2)
        streamer = Streamer(broker.port, total=20_000, signal_at=400)
        streamer.start()
        assert streamer.reached.wait(30), "the stream did not get going"
        broker.kill()
        assert streamer.ended.wait(10)
        assert keeper.disconnected.wait(10)
        keeper.client.loop_stop()
    acked = set(streamer.acked)

    with running_broker(*args) as broker:
        # The same client object: it remembers the QoS 2 packet ids it has answered.
        keeper.port = broker.port
        keeper.connected.clear()
        keeper.connect()
        assert keeper.session_present
        Paho(broker.port).connect().publish("stream", b"end", qos=2)
        got = collect_until(keeper, b"end")
    stream = [int(m.payload) for m in got]
    assert acked <= set(stream), f"lost: {sorted(acked - set(stream))[:10]}"
    qos2 = [seq for seq in stream if seq % 2]
    assert len(qos2) == len(set(qos2)), "a QoS 2 message was delivered twice"
