"""Persistent sessions belong to the cluster, not to a node: kept in JetStream, a session made
on one node is resumed through another (session present, what was queued delivered), taken
over from a live node, handed over by a node that stops, and resumed after its node was
killed, with no acknowledged message lost and no QoS 2 message twice."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import paho.mqtt.client as mqtt
import pytest

from nats_support import culex_node, one_server_and_nodes
from paho_client import Paho
from support import WAIT, BrokerProcess, mosquitto_sub

REDELIVER = 'redeliver_after = 2'  # a dead node's messages in flight come again after 2 s
SERVERS: list[list[str]] = []


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[BrokerProcess]]:
    directory = tmp_path_factory.mktemp("sessions")
    with one_server_and_nodes(directory, ("sa", "sb"), REDELIVER) as (urls, started):
        SERVERS[:] = [urls]
        yield started


def persistent(port: int, version: int, client_id: str) -> Paho:
    client = Paho(port, version, client_id, clean=False)
    return client.connect(session_expiry=600 if version == mqtt.MQTTv5 else None)


def payloads(client: Paho, count: int, timeout: float = WAIT) -> list[str]:
    return [client.get(timeout).payload.decode() for _ in range(count)]


@pytest.mark.parametrize("version", [mqtt.MQTTv311, mqtt.MQTTv5])
@pytest.mark.parametrize("qos", [1, 2])
def test_a_session_queued_on_one_node_resumes_on_another(nodes: list[BrokerProcess],
                                                         qos: int, version: int) -> None:
    a, b = nodes
    client_id = f"tablette-v{version}-q{qos}"
    topic = f"maison/salon/v{version}q{qos}"
    first = persistent(a.port, version, client_id)
    assert first.session_present is False
    assert first.subscribe("maison/+/" + f"v{version}q{qos}", qos)[0] == qos
    first.disconnect()
    publisher = Paho(a.port, mqtt.MQTTv5, f"pub-{client_id}").connect()
    try:
        for index in range(20):  # queued for the offline session
            publisher.publish(topic, str(index).encode(), qos)
        again = persistent(b.port, version, client_id)
        assert again.session_present is True
        assert payloads(again, 20) == [str(i) for i in range(20)]  # all, in order
        publisher.publish(topic, b"after", qos)  # its subscription came along
        assert payloads(again, 1) == ["after"]
        with pytest.raises(queue.Empty):
            again.get(timeout=1)  # and nothing twice
        again.disconnect()
    finally:
        publisher.stop()


def test_a_clean_start_elsewhere_ends_the_session(nodes: list[BrokerProcess]) -> None:
    a, b = nodes
    first = persistent(a.port, mqtt.MQTTv5, "frigo")
    first.subscribe("cuisine/frigo", 1)
    first.disconnect()
    publisher = Paho(a.port, mqtt.MQTTv5, "pub-frigo").connect()
    try:
        publisher.publish("cuisine/frigo", b"4", 1)
        clean = Paho(b.port, mqtt.MQTTv5, "frigo", clean=True).connect(session_expiry=600)
        assert clean.session_present is False
        with pytest.raises(queue.Empty):
            clean.get(timeout=1)  # the old session's queue is gone with it
        clean.disconnect()
        again = persistent(a.port, mqtt.MQTTv5, "frigo")
        assert again.session_present is True  # the new (empty) session, kept
        publisher.publish("cuisine/frigo", b"5", 1)
        with pytest.raises(queue.Empty):
            again.get(timeout=1)  # the old subscription did not come back
        again.disconnect()
    finally:
        publisher.stop()


def test_a_connected_session_is_taken_over_from_another_node(
        nodes: list[BrokerProcess]) -> None:
    a, b = nodes
    holder = persistent(a.port, mqtt.MQTTv5, "telephone")
    holder.subscribe("maison/+/alarme", 2)
    publisher = Paho(a.port, mqtt.MQTTv5, "pub-telephone").connect()
    clients = [holder]
    try:
        # Back and forth: the node let go of each time had a pull request of the session's
        # queue still waiting at JetStream, which must not take the next message; and the
        # last QoS 2 message of each turn may be in flight still (PUBCOMP not yet read): the
        # next node completes it, it does not send it again as a new one.
        for turn, node in enumerate((b, a, b)):
            taker = persistent(node.port, mqtt.MQTTv5, "telephone")
            clients.append(taker)
            assert taker.session_present is True
            assert holder.disconnected.wait(WAIT)
            assert holder.disconnect_reason == mqtt.ReasonCode(mqtt.PacketTypes.DISCONNECT,
                                                               identifier=0x8E)
            sent = [f"{turn}-{index}" for index in range(10)]
            for payload in sent:
                publisher.publish("maison/entree/alarme", payload.encode(), 2)
            assert payloads(taker, 10) == sent  # all, in order
            holder = taker
        with pytest.raises(queue.Empty):
            holder.get(timeout=1)
        assert all(client.messages.empty() for client in clients[:-1])
        holder.disconnect()
    finally:
        publisher.stop()
        for client in clients:
            client.stop()


def test_a_session_taken_over_while_messages_stream_gets_them_in_order(
        nodes: list[BrokerProcess]) -> None:
    a, b = nodes
    holder = persistent(a.port, mqtt.MQTTv5, "sirene")
    holder.subscribe("maison/garage/alarme", 1)
    publisher = Paho(a.port, mqtt.MQTTv5, "pub-sirene").connect()
    stop = threading.Event()
    sent: list[int] = []

    def stream() -> None:  # bounded: stops when told, or after 2,000 messages
        while not stop.is_set() and len(sent) < 2000:
            publisher.publish("maison/garage/alarme", str(len(sent)).encode(), 1)
            sent.append(len(sent))

    streaming = threading.Thread(target=stream)
    clients = [holder]
    received: list[list[int]] = [[]]
    streaming.start()
    try:
        for node in (b, a, b, a):  # taken over while messages come in
            received[-1].append(int(holder.get().payload))  # the stream reaches it first
            holder = persistent(node.port, mqtt.MQTTv5, "sirene")
            clients.append(holder)
            received.append([])
            assert clients[-2].disconnected.wait(WAIT)
        received[-1].append(int(holder.get().payload))
    finally:
        stop.set()
        streaming.join(WAIT)
    try:
        for client, got in zip(clients, received, strict=True):
            got.extend(int(m.payload) for m in drain(client))
        while received[-1][-1] < sent[-1]:
            received[-1].append(int(holder.get().payload))
        for got in received:  # each client in order (a message the last one had not
            assert got == sorted(set(got)), got  # acknowledged comes again to the next)
        assert set().union(*received) == set(sent)  # and together, all of them
        holder.disconnect()
    finally:
        publisher.stop()
        for client in clients:
            client.stop()


def test_sessions_taken_over_together_are_let_go_together(nodes: list[BrokerProcess]) -> None:
    a, b = nodes
    count = 24  # each release waits for its session's last pull request (up to 0.5 s)
    holders: list[Paho] = []
    takers = [Paho(b.port, mqtt.MQTTv5, f"volet-{index}", clean=False) for index in range(count)]
    try:
        for index in range(count):
            holders.append(persistent(a.port, mqtt.MQTTv5, f"volet-{index}"))
            holders[-1].subscribe(f"maison/volet{index}/position", 1)
        # All move to the other node at once (a balancer restarted): node a is asked to let
        # go of the 24 sessions together, and must not answer one request after the other,
        # else the last ones wait longer than the asking node waits for an answer.
        with concurrent.futures.ThreadPoolExecutor(count) as pool:
            list(pool.map(lambda taker: taker.connect(session_expiry=600), takers))
        assert all(taker.session_present for taker in takers)
        assert all(holder.disconnected.wait(WAIT) for holder in holders)
        assert not [line for line in b.lines if "does not let go" in line]
    finally:
        for client in holders + takers:
            client.stop()


def drain(client: Paho) -> list[mqtt.MQTTMessage]:
    got: list[mqtt.MQTTMessage] = []
    with contextlib.suppress(queue.Empty):
        while True:
            got.append(client.messages.get_nowait())
    return got


def test_a_node_that_stops_hands_its_sessions_over(nodes: list[BrokerProcess],
                                                   tmp_path: Path) -> None:
    a, b = nodes
    c = culex_node(tmp_path, "sc-stop", SERVERS[0], cluster=REDELIVER)
    try:
        first = persistent(c.port, mqtt.MQTTv311, "radiateur")
        first.subscribe("chauffage/#", 1)
        first.disconnect()
        publisher = Paho(a.port, mqtt.MQTTv5, "pub-radiateur").connect()
        for index in range(5):
            publisher.publish("chauffage/salon", str(index).encode(), 1)
        publisher.stop()
        c.stop()
        again = persistent(b.port, mqtt.MQTTv311, "radiateur")
        assert again.session_present is True
        # Handed over, not waited for: well within the redelivery delay.
        assert payloads(again, 5, timeout=1.5) == [str(i) for i in range(5)]
        again.disconnect()
    finally:
        if c.proc is not None and c.proc.poll() is None:
            c.stop()


COUNT = 200


@pytest.mark.parametrize("qos", [1, 2])
def test_a_killed_node_s_sessions_resume_elsewhere(nodes: list[BrokerProcess],
                                                   tmp_path: Path, qos: int) -> None:
    """The subscriber's node is SIGKILLed in the middle of a stream: the subscriber resumes
    its session through another node and gets every message the publisher was told was
    stored; at QoS 2, each exactly once: the new node resends what was in flight under the
    packet ids the old node used (PUBLISH again, or PUBREL once the client had received
    it), and the client, which keeps its session state as MQTT 4.1 asks, takes none of them
    for a new message."""
    a, b = nodes
    c = culex_node(tmp_path, f"sc-kill-q{qos}", SERVERS[0], cluster=REDELIVER)
    topic = f"compteur/q{qos}"
    client_id = f"enregistreur-q{qos}"
    received: list[int] = []
    halfway = threading.Event()
    arrived = threading.Condition()

    def on_message(client: object, userdata: object, message: mqtt.MQTTMessage) -> None:
        with arrived:
            received.append(int(message.payload))
            arrived.notify_all()
        if len(received) == COUNT // 3:
            halfway.set()

    try:
        first = Paho(c.port, mqtt.MQTTv5, client_id, clean=False)
        first.client.on_message = on_message
        first.connect(session_expiry=600)
        first.subscribe(topic, qos)
        publisher = Paho(a.port, mqtt.MQTTv5, f"pub-{client_id}").connect()
        sent = threading.Thread(target=lambda: [
            publisher.publish(topic, str(i).encode(), qos) for i in range(COUNT)], daemon=True)
        sent.start()
        assert halfway.wait(3 * WAIT)
        c.kill()
        assert first.disconnected.wait(WAIT)
        first.client.loop_stop()
        sent.join(3 * WAIT)
        assert not sent.is_alive()  # every message acknowledged to the publisher
        publisher.stop()
        before = len(received)
        # The same client, its session state kept (MQTT 4.1): through another node.
        first.port = b.port
        first.connected.clear()
        first.connect(session_expiry=600)
        assert first.session_present is True
        with arrived:
            assert arrived.wait_for(lambda: len(set(received)) >= COUNT, 4 * WAIT), (
                f"{len(set(received))} of {COUNT} ({before} before the kill)")
        assert set(received) == set(range(COUNT))
        if qos == 2:
            assert len(received) == COUNT  # exactly once
        first.disconnect()
    finally:
        if c.proc is not None and c.proc.poll() is None:
            c.stop()


async def record_of(client_id: str, until: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The session's record in the cluster's bucket, once ``until`` holds for it (watched,
    not polled)."""
    connection = await nats.connect(SERVERS[0])
    try:
        kv = await connection.jetstream().key_value("CULEX_SESSIONS")
        watcher = await kv.watch(client_id)
        while True:
            entry = await asyncio.wait_for(watcher.updates(timeout=WAIT), WAIT)
            if entry is not None and entry.value:
                record: dict[str, Any] = json.loads(entry.value)
                if until(record):
                    await watcher.stop()
                    return record
    finally:
        await connection.close()


def test_a_dead_node_s_offline_session_is_taken_and_its_delayed_will_published_once(
        nodes: list[BrokerProcess], tmp_path: Path) -> None:
    a, b = nodes
    c = culex_node(tmp_path, "sc-orphans", SERVERS[0], cluster=REDELIVER)
    watcher = Paho(a.port, mqtt.MQTTv5, "veille-volet").connect()
    try:
        watcher.subscribe("maison/+/etat", 1)
        volet = mosquitto_sub(c.port, "-V", "5", "-i", "volet", "-c", "-x", "600", "-q", "1",
                              "-t", "maison/volet/commande", "--will-topic",
                              "maison/volet/etat", "--will-payload", "perdu",
                              "-D", "will", "will-delay-interval", "3")
        volet.kill()  # no DISCONNECT: its will is due in 3 s
        volet.communicate(timeout=WAIT)
        # Its node writes the will into the session's record, then dies before the 3 s.
        record = asyncio.run(record_of("volet", lambda r: r.get("will") is not None))
        assert record["holder"] == "sc-orphans" and record["will"]["delay"] == 3
        c.kill()
        # A survivor takes the session (after 5 s of silence) and publishes the will, once.
        message = watcher.get(timeout=3 * WAIT)
        assert (message.topic, message.payload) == ("maison/volet/etat", b"perdu")
        with pytest.raises(queue.Empty):
            watcher.get(timeout=2)
        # Kept by the survivor, its will gone (published).
        asyncio.run(record_of("volet", lambda r: r["holder"] in ("sa", "sb")
                              and r.get("will") is None))
        # The session itself lives on: its client comes back to it through any node.
        again = persistent(b.port, mqtt.MQTTv5, "volet")
        assert again.session_present is True
        again.disconnect()
    finally:
        watcher.stop()
        if c.proc is not None and c.proc.poll() is None:
            c.stop()
