"""The cluster loses nothing it acknowledged when a machine goes: three NATS servers with
JetStream (streams replicated 3 times) and two culex nodes. A culex node killed with SIGKILL
in the middle of a QoS 1 or QoS 2 stream, or a NATS server killed and restarted: every message
whose PUBACK (PUBREC) the publisher received reaches the subscriber on the other node."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from nats_support import NatsServers, culex_node
from paho_client import Paho
from support import WAIT

COUNT = 300


@pytest.fixture(scope="module")
def nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServers]:
    servers = NatsServers(tmp_path_factory.mktemp("nats"), count=3).start()
    try:
        yield servers
    finally:
        servers.stop()


class Publisher:
    """Publishes 0..COUNT-1 one after another, each until it is acknowledged, reconnecting
    to whichever node is given when its node goes away; remembers what was acknowledged."""

    def __init__(self, ports: list[int], topic: str, qos: int) -> None:
        self.ports, self.topic, self.qos = ports, topic, qos
        self.acknowledged: list[int] = []
        self.halfway = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _connect(self) -> Paho | None:
        for port in self.ports:
            try:
                return Paho(port, mqtt.MQTTv5, f"pub-{self.topic}").connect()
            except (OSError, AssertionError):
                continue
        return None

    def _run(self) -> None:
        client = self._connect()
        index = 0
        while index < COUNT and client is not None:
            info = client.client.publish(self.topic, str(index), qos=self.qos)
            try:
                info.wait_for_publish(WAIT)
                done = info.is_published()
            except (RuntimeError, ValueError):
                done = False
            if done:
                self.acknowledged.append(index)
                index += 1
                if index == COUNT // 3:
                    self.halfway.set()
            else:  # its node went away, or could not store it: again, elsewhere
                client.stop()
                client = self._connect()
        if client is not None:
            client.stop()


def run_stream(nats: NatsServers, tmp_path: Path, qos: int, kill: str) -> None:
    directory = tmp_path
    # Names of their own: each test's nodes have durable consumers of their own.
    a = culex_node(directory, f"a-q{qos}-{kill}", nats.urls[:1], replicas=3)
    b = culex_node(directory, f"b-q{qos}-{kill}", nats.urls[1:2], replicas=3)
    nodes = [a, b]
    try:
        topic = f"flux/q{qos}/{kill}"
        subscriber = Paho(b.port, mqtt.MQTTv5, f"sub-{topic}").connect()
        subscriber.subscribe(topic, qos)
        publisher = Publisher([a.port, b.port], topic, qos)
        publisher.thread.start()
        assert publisher.halfway.wait(3 * WAIT)
        if kill == "culex":
            a.kill()  # SIGKILL: the publisher goes on through b
            nodes.remove(a)
        else:
            nats.kill(0)  # node a's server: a reconnects to another one
            nats.start_one(0)
        publisher.thread.join(6 * WAIT)
        assert not publisher.thread.is_alive()
        assert len(publisher.acknowledged) == COUNT
        received: list[int] = []
        while len(set(received)) < COUNT:
            received.append(int(subscriber.messages.get(timeout=WAIT).payload))
        assert set(received) == set(range(COUNT))
        if qos == 2 and kill == "nats":
            assert len(received) == COUNT  # exactly once
        elif qos == 2:
            # The one message in flight when its node died may be sent again by the client,
            # in a new session (the old one died with the node): at most that one twice.
            # Exactly once across a node's death needs sessions kept in JetStream
            # (docs/cluster.md, "Sessions").
            assert len(received) <= COUNT + 1
        subscriber.stop()
    finally:
        for node in nodes:
            node.stop()


@pytest.mark.parametrize("qos", [1, 2])
def test_a_culex_node_killed_mid_stream_loses_nothing_acknowledged(
        nats: NatsServers, tmp_path: Path, qos: int) -> None:
    run_stream(nats, tmp_path, qos, "culex")


def test_a_nats_server_killed_and_restarted_mid_stream(nats: NatsServers,
                                                       tmp_path: Path) -> None:
    run_stream(nats, tmp_path, 1, "nats")
