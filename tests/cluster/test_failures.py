"""The cluster loses nothing it acknowledged when a machine goes: three NATS servers with
JetStream (streams replicated 3 times) and two culex nodes. A culex node killed with SIGKILL
in the middle of a QoS 1 or QoS 2 stream, or a NATS server killed and restarted: every message
whose PUBACK (PUBREC) the publisher received reaches the subscriber on the other node. And
JetStream's consumers changing leaders mid-stream deliver no QoS 2 message twice."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import queue
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import nats as nats_client
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
    """Publishes 0..COUNT-1 one after another, each until it is acknowledged, in a persistent
    session; when its node goes away, the same client (its session state kept, as MQTT 4.1
    asks) connects to the next node, which resumes the session, and the message in flight is
    completed there (its PUBLISH resent with DUP, or its PUBREL), never published anew."""

    def __init__(self, ports: list[int], topic: str, qos: int) -> None:
        self.ports, self.topic, self.qos = ports, topic, qos
        self.acknowledged: list[int] = []
        self.halfway = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.client = Paho(ports[0], mqtt.MQTTv5, f"pub-{topic}", clean=False)
        # Completed packets by message id: paho completes a message queued while it was
        # disconnected once it is resent, though its MessageInfo says it failed.
        self.completed: set[int] = set()
        self.changed = threading.Condition()
        self.client.client.on_publish = self._on_publish
        self.client.client.on_disconnect = self._on_disconnect

    def _on_publish(self, client: object, userdata: object, mid: int, reason: object,
                    props: object) -> None:
        with self.changed:
            self.completed.add(mid)
            self.changed.notify_all()

    def _on_disconnect(self, *args: object) -> None:
        with self.changed:
            self.client.disconnected.set()
            self.changed.notify_all()

    def _reconnect(self) -> bool:
        client = self.client
        client.client.loop_stop()
        for port in [*self.ports, *self.ports]:
            # Only a node that takes connections is tried: paho (2.2) resets its messages in
            # flight on every attempt, a refused one too, and a second reset turns a QoS 2
            # message awaiting PUBCOMP into a new PUBLISH (DUP 0) instead of its PUBREL. The
            # node rightly takes that for a new message (MQTT 4.3.3 forbids the client to send
            # it after its PUBREL), and the subscriber would get it twice.
            try:
                socket.create_connection(("127.0.0.1", port), timeout=WAIT).close()
            except OSError:
                continue
            client.port = port
            client.connected.clear()
            client.disconnected.clear()
            try:
                client.connect(session_expiry=600)
            except (OSError, AssertionError):
                continue
            if client.connect_result == 0:
                return True
        return False

    def _acknowledged(self, mid: int) -> bool:
        """Wait for the acknowledgement, through as many nodes as it takes."""
        for _ in range(3 * len(self.ports)):
            with self.changed:
                self.changed.wait_for(lambda: mid in self.completed
                                      or self.client.disconnected.is_set(), WAIT)
                if mid in self.completed:
                    return True
            if not self._reconnect():
                return False
        return False

    def _run(self) -> None:
        self.client.connect(session_expiry=600)
        for index in range(COUNT):
            info = self.client.client.publish(self.topic, str(index), qos=self.qos)
            if not self._acknowledged(info.mid):
                break
            self.acknowledged.append(index)
            if index + 1 == COUNT // 3:
                self.halfway.set()
        self.client.stop()


def run_stream(nats: NatsServers, tmp_path: Path, qos: int, kill: str) -> None:
    directory = tmp_path
    # Names of their own: each test's nodes have durable consumers of their own. A message
    # JetStream handed to a node as its server died comes again after redeliver_after: by
    # default 10 s, as long as the test waits for each message.
    redeliver = "redeliver_after = 2"
    a = culex_node(directory, f"a-q{qos}-{kill}", nats.urls[:1], replicas=3, cluster=redeliver)
    b = culex_node(directory, f"b-q{qos}-{kill}", nats.urls[1:2], replicas=3, cluster=redeliver)
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
        if qos == 2:
            assert len(received) == COUNT  # exactly once, the node's death notwithstanding
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


class Stepdowns:
    """Asks NATS, again and again until stopped, for new leaders of the given consumers of
    the message stream (``$JS.API.CONSUMER.LEADER.STEPDOWN``): acknowledgements on their way
    to a leader that steps down are lost, and JetStream sends those messages again."""

    def __init__(self, url: str, consumers: list[str]) -> None:
        self.url, self.consumers = url, consumers
        self.done = threading.Event()
        self.count = 0
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        nc = await nats_client.connect(self.url)
        try:
            while not self.done.is_set():
                for consumer in self.consumers:
                    subject = f"$JS.API.CONSUMER.LEADER.STEPDOWN.CULEX_MSG.{consumer}"
                    with contextlib.suppress(Exception):  # no leader yet: asked next time
                        await nc.request(subject, b"", timeout=WAIT)
                        self.count += 1
                    await asyncio.sleep(0.1)
        finally:
            await nc.close()


def test_consumer_leaders_changing_mid_stream_deliver_each_qos2_message_once(
        nats: NatsServers, tmp_path: Path) -> None:
    """A message whose acknowledgement a consumer's leader lost comes again: the node knows
    it handled it and does not deliver it twice, to a clean session (the node's consumer) or
    a persistent one (its own consumer)."""
    config = "redeliver_after = 1"
    a = culex_node(tmp_path, "a-leaders", nats.urls[:1], replicas=3, cluster=config)
    b = culex_node(tmp_path, "b-leaders", nats.urls[1:2], replicas=3, cluster=config)
    try:
        topic = "flux/leaders"
        clean = Paho(b.port, mqtt.MQTTv5, "leaders-clean").connect()
        clean.subscribe(topic, 2)
        kept = Paho(b.port, mqtt.MQTTv5, "leaders-kept", clean=False).connect(session_expiry=600)
        kept.subscribe(topic, 2)
        digest = hashlib.sha256(b"leaders-kept").hexdigest()[:32]
        stepdowns = Stepdowns(nats.urls[2], ["node-b-leaders", f"s-{digest}"])
        stepdowns.thread.start()
        publisher = Publisher([a.port], topic, 2)
        publisher.thread.start()
        publisher.thread.join(6 * WAIT)
        stepdowns.done.set()
        stepdowns.thread.join(WAIT)
        assert not publisher.thread.is_alive()
        assert len(publisher.acknowledged) == COUNT
        assert stepdowns.count >= 4
        for name, subscriber in (("clean", clean), ("persistent", kept)):
            received: list[int] = []
            while len(set(received)) < COUNT:
                received.append(int(subscriber.messages.get(timeout=WAIT).payload))
            # A copy sent again comes redeliver_after (1 s) after the first: waited for.
            with contextlib.suppress(queue.Empty):
                while True:
                    received.append(int(subscriber.messages.get(timeout=3.0).payload))
            twice = sorted(n for n, times in collections.Counter(received).items() if times > 1)
            assert not twice, f"{name} session: received twice: {twice}"
            subscriber.stop()
    finally:
        for node in (a, b):
            node.stop()
