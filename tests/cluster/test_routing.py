"""Two culex nodes on NATS JetStream act as one broker: a message published on one node
reaches the matching subscribers on the other, once, in order; at QoS 0, 1 and 2, MQTT 3.1.1
and 5, with paho-mqtt and the mosquitto tools."""

from __future__ import annotations

import asyncio
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import nats.js.errors
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from nats_support import culex_node, metrics, one_server_and_nodes
from paho_client import Paho
from support import WAIT, BrokerProcess, mosquitto_sub, sub_lines
from web_support import events, login, start_dashboard_broker

NATS_URLS: list[list[str]] = []  # the module's NATS server, for nodes started by a test


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[BrokerProcess]]:
    with one_server_and_nodes(tmp_path_factory.mktemp("cluster"), ("a", "b")) as (urls, started):
        NATS_URLS[:] = [urls]
        yield started


@pytest.mark.parametrize("version", [mqtt.MQTTv311, mqtt.MQTTv5])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_cross_node_round_trip(nodes: list[BrokerProcess], qos: int, version: int) -> None:
    a, b = nodes
    topic = f"maison/v{version}/q{qos}/temperature"
    subscriber = Paho(b.port, version, f"sub-{version}-{qos}").connect()
    publisher = Paho(a.port, version, f"pub-{version}-{qos}").connect()
    try:
        subscriber.subscribe("maison/+/" + f"q{qos}/#", qos)  # the SUBACK: B's interest is known
        for index in range(20):
            publisher.client.publish(topic, f"{index}", qos=qos).wait_for_publish(WAIT)
        got = [subscriber.messages.get(timeout=WAIT) for _ in range(20)]
        assert [m.payload.decode() for m in got] == [str(i) for i in range(20)]  # in order
        assert {m.topic for m in got} == {topic} and {m.qos for m in got} == {qos}
        assert subscriber.messages.empty()  # once
    finally:
        publisher.stop()
        subscriber.stop()


def test_awkward_topics_and_mqtt5_properties_cross(nodes: list[BrokerProcess]) -> None:
    a, b = nodes
    subscriber = Paho(b.port, mqtt.MQTTv5, "odd-sub").connect()
    publisher = Paho(a.port, mqtt.MQTTv5, "odd-pub").connect()
    try:
        subscriber.subscribe("odd/#", 1)
        topics = ["odd/a.b", "odd/ /*/>", "odd//x", "odd/$x", "odd/été/温度", "odd/_41", "odd"]
        props = Properties(PacketTypes.PUBLISH)
        props.UserProperty = [("pièce", "salon")]
        props.ContentType = "text/plain"
        props.ResponseTopic = "réponses/salon"
        props.CorrelationData = b"\x00\x01"
        for topic in topics:
            publisher.client.publish(topic, topic.encode(), qos=1,
                                     properties=props).wait_for_publish(WAIT)
        got = [subscriber.messages.get(timeout=WAIT) for _ in topics]
        assert [m.topic for m in got] == topics
        assert [m.payload.decode() for m in got] == topics
        first = got[0].properties
        assert first.UserProperty == [("pièce", "salon")] and first.ContentType == "text/plain"
        assert first.ResponseTopic == "réponses/salon" and first.CorrelationData == b"\x00\x01"
    finally:
        publisher.stop()
        subscriber.stop()


def retained_on(node: BrokerProcess, topic_filter: str) -> str:
    """What a new subscriber on ``node`` receives at once (its retained messages)."""
    return subprocess.run(["mosquitto_sub", "-p", str(node.port), "-t", topic_filter, "-v",
                           "-W", "1"], capture_output=True, text=True, timeout=WAIT).stdout


def test_retained_messages_on_every_node_even_one_started_later(
        nodes: list[BrokerProcess], tmp_path: Path) -> None:
    a, b = nodes
    for topic, value in (("garage/porte", "ouverte"), ("garage/lampe", "off")):
        subprocess.run(["mosquitto_pub", "-p", str(a.port), "-t", topic, "-m", value, "-r",
                        "-q", "1"], check=True, timeout=WAIT)
    # The publisher's PUBACK came once its node holds it: read your own writes there.
    assert sorted(retained_on(a, "garage/#").splitlines()) == [
        "garage/lampe off", "garage/porte ouverte"]
    late = subprocess.run(["mosquitto_sub", "-p", str(b.port), "-t", "garage/porte", "-v",
                           "-C", "1", "-W", "5"], capture_output=True, text=True, timeout=WAIT)
    assert late.stdout == "garage/porte ouverte\n"
    # A node that joins later starts with every retained message of the cluster.
    c = culex_node(tmp_path, "c", NATS_URLS[0])
    try:
        assert sorted(retained_on(c, "garage/#").splitlines()) == [
            "garage/lampe off", "garage/porte ouverte"]
        # A deletion on one node is a deletion everywhere.
        subprocess.run(["mosquitto_pub", "-p", str(b.port), "-t", "garage/porte", "-n",
                        "-r", "-q", "1"], check=True, timeout=WAIT)
        assert retained_on(b, "garage/#") == "garage/lampe off\n"
        deadline = time.monotonic() + WAIT
        while retained_on(c, "garage/porte") and time.monotonic() < deadline:
            pass  # each look takes a second (-W 1)
        assert retained_on(c, "garage/#") == "garage/lampe off\n"
        assert retained_on(a, "garage/#") == "garage/lampe off\n"
    finally:
        c.stop()


def test_mosquitto_tools_across_nodes(nodes: list[BrokerProcess]) -> None:
    a, b = nodes
    sub = mosquitto_sub(b.port, "-t", "cave/#", "-v", "-C", "3", "-W", str(int(WAIT)), "-q",
                        "2")
    for qos in (0, 1, 2):
        subprocess.run(["mosquitto_pub", "-p", str(a.port), "-t", f"cave/q{qos}", "-m", "8",
                        "-q", str(qos)], check=True, timeout=WAIT)
    assert sub_lines(sub) == ["cave/q0 8", "cave/q1 8", "cave/q2 8"]


def test_a_node_receives_only_what_its_subscriptions_want(nodes: list[BrokerProcess]) -> None:
    a, b = nodes
    # B has no subscription to "jardin/...": NATS sends it none of those messages; a
    # subscriber on A gets them.
    local = Paho(a.port, mqtt.MQTTv5, "jardin-local").connect()
    local.subscribe("jardin/#", 1)
    remote = Paho(b.port, mqtt.MQTTv5, "autre").connect()
    remote.subscribe("autre/#", 0)
    publisher = Paho(a.port, mqtt.MQTTv5, "jardin-pub").connect()
    try:
        before = metrics(b)['culex_cluster_messages_total{direction="received"}']
        for qos in (0, 1, 0, 1):
            publisher.client.publish("jardin/arrosage", b"on", qos=qos).wait_for_publish(WAIT)
            assert local.messages.get(timeout=WAIT).payload == b"on"
        publisher.client.publish("autre/x", b"1", qos=0).wait_for_publish(WAIT)
        assert remote.messages.get(timeout=WAIT).topic == "autre/x"
        after = metrics(b)
        assert after['culex_cluster_messages_total{direction="received"}'] == before + 1
        assert after['culex_cluster_connected{node="b"}'] == 1
        assert remote.messages.empty()
    finally:
        for client in (local, remote, publisher):
            client.stop()


@pytest.mark.parametrize("qos", [0, 1])
def test_shared_subscriptions_spread_across_nodes_once(nodes: list[BrokerProcess],
                                                       qos: int) -> None:
    a, b = nodes
    members = [Paho(port, mqtt.MQTTv5, f"worker-{qos}-{index}").connect()
               for index, port in enumerate((a.port, a.port, b.port))]
    ordinary = Paho(b.port, mqtt.MQTTv5, f"watcher-{qos}").connect()
    publisher = Paho(a.port, mqtt.MQTTv5, f"jobs-{qos}").connect()
    deliveries: queue.Queue[tuple[int, bytes]] = queue.Queue()  # (member, payload)
    for index, member in enumerate(members):
        member.client.on_message = lambda c, u, m, i=index: deliveries.put((i, m.payload))
    try:
        for member in members:
            member.subscribe(f"$share/workers/jobs/q{qos}/#", qos)
        ordinary.subscribe(f"jobs/q{qos}/#", qos)
        count = 60
        for index in range(count):
            publisher.client.publish(f"jobs/q{qos}/{index}", str(index),
                                     qos=qos).wait_for_publish(WAIT)
        # The ordinary subscriber gets every message; the group, each message once in all.
        assert sorted(int(ordinary.messages.get(timeout=WAIT).payload)
                      for _ in range(count)) == list(range(count))
        got: list[list[int]] = [[] for _ in members]
        for _ in range(count):
            index, payload = deliveries.get(timeout=WAIT)
            got[index].append(int(payload))
        assert sorted(value for each in got for value in each) == list(range(count))
        assert deliveries.empty()  # once each, none lost
        assert got[2] and (got[0] or got[1])  # on both nodes
    finally:
        for client in (*members, ordinary, publisher):
            client.stop()


def test_a_client_id_is_one_connection_in_the_whole_cluster(nodes: list[BrokerProcess]) -> None:
    a, b = nodes
    first = Paho(a.port, mqtt.MQTTv5, "fenetre-salon").connect()
    second = Paho(b.port, mqtt.MQTTv5, "fenetre-salon").connect()
    try:
        assert first.disconnected.wait(WAIT)
        assert str(first.disconnect_reason) == "Session taken over"  # 0x8E
        assert second.subscribe("fenetre/#", 1)[0] == 1 and not second.disconnected.is_set()
    finally:
        first.stop()
        second.stop()


def test_takeover_races_leave_exactly_one(nodes: list[BrokerProcess]) -> None:
    a, b = nodes
    for round_number in range(10):
        client_id = f"course-{round_number}"
        pair = [Paho(a.port, mqtt.MQTTv5, client_id), Paho(b.port, mqtt.MQTTv5, client_id)]
        threads = [threading.Thread(target=client.connect) for client in pair]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
        try:
            deadline = time.monotonic() + WAIT
            while not any(client.disconnected.is_set() for client in pair):
                assert time.monotonic() < deadline, "both kept their connection"
                pair[0].disconnected.wait(0.05)
            [loser] = [client for client in pair if client.disconnected.is_set()]
            [winner] = [client for client in pair if client is not loser]
            assert str(loser.disconnect_reason) == "Session taken over"
            assert winner.subscribe("course/#", 0)[0] == 0  # still served
            assert not winner.disconnected.is_set()
        finally:
            for client in pair:
                client.stop()


def test_a_client_id_comes_back_through_any_node(nodes: list[BrokerProcess]) -> None:
    a, b = nodes
    for port in (a.port, b.port, a.port, a.port):  # its claim released, then made again
        client = Paho(port, mqtt.MQTTv5, "porte-garage").connect()
        try:
            assert client.subscribe("porte/#", 0)[0] == 0
            assert not client.disconnected.is_set()
        finally:
            client.stop()


@pytest.mark.parametrize("end", ["kill", "stop"])
def test_the_wills_of_a_dead_node_s_clients_are_published_once(
        nodes: list[BrokerProcess], tmp_path: Path, end: str) -> None:
    watchers = [Paho(node.port, mqtt.MQTTv5, f"veille-{index}").connect()
                for index, node in enumerate(nodes)]
    c = culex_node(tmp_path, f"c-{end}", NATS_URLS[0])
    try:
        for watcher in watchers:
            watcher.subscribe("maison/+/status", 1)
        sensor = Paho(c.port, mqtt.MQTTv311, f"capteur-cave-{end}")
        sensor.client.will_set("maison/cave/status", b"offline", qos=1)
        sensor.connect()
        if end == "kill":
            c.kill()  # SIGKILL: the node cannot publish the will, the others do
        else:
            c.stop()  # SIGTERM: the node publishes it itself, and the others do not
        for watcher in watchers:  # once on each node's subscriber
            message = watcher.messages.get(timeout=3 * WAIT)
            assert (message.topic, message.payload) == ("maison/cave/status", b"offline")
        for watcher in watchers:
            with pytest.raises(queue.Empty):
                watcher.messages.get(timeout=2)  # and not twice
        sensor.client.loop_stop()
    finally:
        if c.proc is not None and c.proc.poll() is None:
            c.stop()
        for watcher in watchers:
            watcher.stop()


def test_each_node_shows_itself_and_the_cluster(nodes: list[BrokerProcess],
                                                tmp_path: Path) -> None:
    # $SYS, /metrics and the dashboard of a third node, with a dashboard and $SYS every second.
    cluster = ('sys_interval = 1\n[cluster]\nnode = "d-watch"\nservers = ['
               + ", ".join(f'"{url}"' for url in NATS_URLS[0]) + "]\n")
    node, port = start_dashboard_broker(tmp_path, cluster)
    try:
        sys_values = mosquitto_sub(node.port, "-u", "admin", "-P", "admin-pw", "-t",
                                   "$SYS/broker/cluster/#", "-v", "-W", str(int(WAIT)))
        assert sys_values.stdout is not None
        seen: dict[str, str] = {}
        for line in sys_values.stdout:  # retained values first, then each update
            topic, _, value = line.rstrip("\n").partition(" ")
            seen[topic] = value
            if {"$SYS/broker/cluster/node", "$SYS/broker/cluster/connected"} <= set(seen):
                break
        sys_values.kill()
        sys_values.wait()
        assert seen["$SYS/broker/cluster/node"] == "d-watch"
        assert seen["$SYS/broker/cluster/connected"] == "1"
        _, cookie, _ = login(port, "admin", "admin-pw")
        stream = events(port, "/api/events", {"Cookie": cookie})
        for name, overview in stream:  # the others' heartbeats come within a second
            if name == "overview" and len(overview["cluster"]["nodes"]) >= 3:
                break
        stream.close()
        assert overview["cluster"]["node"] == "d-watch" and overview["cluster"]["connected"]
        assert {"a", "b", "d-watch"} <= set(overview["cluster"]["nodes"])
    finally:
        node.stop()


def test_an_expired_retained_message_is_gone_for_a_node_started_later(
        nodes: list[BrokerProcess], tmp_path: Path) -> None:
    a, _ = nodes
    props = Properties(PacketTypes.PUBLISH)
    props.MessageExpiryInterval = 3

    async def kept_by_jetstream(until_gone: bool) -> bool:
        """Whether JetStream keeps the retained message (with ``until_gone``: once it does
        not, or WAIT seconds)."""
        connection = await nats.connect(NATS_URLS[0])
        deadline = time.monotonic() + WAIT
        try:
            while True:
                try:
                    await connection.jetstream().get_last_msg("CULEX_RETAINED",
                                                              "culex.r.volatil.x")
                except nats.js.errors.NotFoundError:
                    return False
                if not until_gone or time.monotonic() > deadline:
                    return True
                await connection.flush()  # one round trip between two looks
        finally:
            await connection.close()

    publisher = Paho(a.port, mqtt.MQTTv5, "ephemere").connect()
    publisher.client.publish("volatil/x", b"bientot parti", qos=1, retain=True,
                             properties=props).wait_for_publish(WAIT)
    assert asyncio.run(kept_by_jetstream(until_gone=False))  # its PUBACK came once stored
    publisher.stop()
    # JetStream drops it when it expires (3 s): a node that starts then never learns of it.
    assert not asyncio.run(kept_by_jetstream(until_gone=True))
    c = culex_node(tmp_path, "c-late", NATS_URLS[0])
    try:
        assert retained_on(c, "volatil/#") == ""
        assert retained_on(a, "volatil/#") == ""  # expired where it was published too
    finally:
        c.stop()
