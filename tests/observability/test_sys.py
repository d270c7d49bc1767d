"""$SYS topics: Mosquitto's names, formats and load averages; counters that move by exactly
what happened; clients cannot write there; the ACL decides who reads."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import paho.mqtt.client as mqtt

from culex.observability import Counters, Gauges, SysTree

from paho_client import Paho
from support import WAIT, FakeScheduler, broker_with_config

GAUGES = Gauges(connected=2, connected_peak=3, sessions=5, subscriptions=7,
                shared_subscriptions=1, retained_messages=4, retained_bytes=40,
                queued_messages=6, queued_bytes=60, inflight_messages=2)


def make_tree(counters: Counters, interval: float = 10.0) -> tuple[SysTree, FakeScheduler,
                                                                  dict[str, list[str]]]:
    scheduler = FakeScheduler()
    sent: dict[str, list[str]] = {}
    tree = SysTree(counters, lambda: GAUGES,
                   lambda topic, payload: sent.setdefault(topic, []).append(payload.decode()),
                   scheduler, interval, "9.9")
    return tree, scheduler, sent


def test_values_have_mosquittos_names_and_formats() -> None:
    counters = Counters()
    counters.bytes_received = 1234
    tree, _, sent = make_tree(counters)
    tree.start()
    last = {topic.removeprefix("$SYS/broker/"): values[-1] for topic, values in sent.items()}
    assert last["version"] == "culex version 9.9"
    assert last["uptime"] == "0 seconds"
    assert last["clients/connected"] == last["clients/active"] == "2"
    assert last["clients/disconnected"] == last["clients/inactive"] == "3"
    assert last["clients/total"] == "5" and last["clients/maximum"] == "3"
    assert last["store/messages/count"] == last["messages/stored"] == "12"
    assert last["store/messages/bytes"] == "100"
    assert last["subscriptions/count"] == "7" and last["shared_subscriptions/count"] == "1"
    assert last["retained messages/count"] == "4"
    assert last["bytes/received"] == "1234"
    assert last["load/bytes/received/1min"] == "0.00"
    loads = [topic for topic in last if topic.startswith("load/")]
    assert len(loads) == 27  # 9 counters x 1, 5 and 15 minutes, as Mosquitto's


def test_loads_follow_mosquittos_formula_on_a_fake_clock() -> None:
    counters = Counters()
    tree, scheduler, sent = make_tree(counters)
    tree.start()
    expected = {60.0: 0.0, 300.0: 0.0, 900.0: 0.0}
    for step, received in enumerate((600, 600, 0, 3000, 0, 0, 0)):
        counters.messages_received[1] += received
        scheduler.advance(10.0)
        rate = received * 60.0 / 10.0
        for period in expected:
            expected[period] = rate + math.exp(-10.0 / period) * (expected[period] - rate)
        for name, period in (("1min", 60.0), ("5min", 300.0), ("15min", 900.0)):
            published = sent[f"$SYS/broker/load/publish/received/{name}"][-1]
            assert published == f"{expected[period]:.2f}", (step, name)
    assert sent["$SYS/broker/uptime"][-1] == "70 seconds"


def test_a_value_is_published_only_when_it_changed() -> None:
    counters = Counters()
    tree, scheduler, sent = make_tree(counters)
    tree.start()
    scheduler.advance(10.0)
    scheduler.advance(10.0)
    assert sent["$SYS/broker/clients/connected"] == ["2"]
    assert sent["$SYS/broker/load/bytes/sent/1min"] == ["0.00"]
    assert len(sent["$SYS/broker/uptime"]) == 3
    counters.bytes_sent += 10
    scheduler.advance(10.0)
    assert sent["$SYS/broker/bytes/sent"] == ["0", "10"]
    tree.stop()
    scheduler.advance(60.0)
    assert len(sent["$SYS/broker/uptime"]) == 4  # stopped: no more updates


SYS_CONFIG = "sys_interval = 1\n"


def wait_value(client: Paho, topic: str, wanted: str) -> None:
    """Read ``client``'s messages until ``topic`` carries ``wanted``."""
    while True:
        message = client.get()
        if message.topic == topic and message.payload.decode() == wanted:
            return


def test_counters_move_by_exactly_what_was_published(tmp_path: Path) -> None:
    with broker_with_config(tmp_path, SYS_CONFIG) as broker:
        watcher = Paho(broker.port, mqtt.MQTTv311, "watcher").connect()
        watcher.subscribe("$SYS/broker/publish/messages/received")
        retained = watcher.get()
        assert retained.retain  # the current value, at once
        before = int(retained.payload)
        publisher = Paho(broker.port, mqtt.MQTTv311, "publisher").connect()
        for index in range(25):
            publisher.publish("sensors/t", str(index).encode(), qos=index % 3)
        wait_value(watcher, "$SYS/broker/publish/messages/received", str(before + 25))
        publisher.disconnect()
        watcher.disconnect()


def test_clients_cannot_publish_into_sys(tmp_path: Path) -> None:
    with broker_with_config(tmp_path, SYS_CONFIG) as broker:
        client = Paho(broker.port, mqtt.MQTTv5, "forger").connect()
        acks: list[int] = []
        client.client.on_publish = lambda c, u, mid, reason, p: acks.append(reason.value)
        info = client.client.publish("$SYS/broker/version", b"forged", qos=1, retain=True)
        info.wait_for_publish(WAIT)
        assert acks == [0x87]  # PUBACK: Not authorized
        reader = Paho(broker.port, mqtt.MQTTv311, "reader").connect()
        reader.subscribe("$SYS/broker/version")
        assert reader.get().payload.startswith(b"culex version ")
        # A will under $SYS is refused with the CONNECT.
        will = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="will-forger",
                           protocol=mqtt.MQTTv311)
        will.will_set("$SYS/broker/uptime", b"0 seconds")
        refused: list[int] = []
        will.on_connect = lambda c, u, f, reason, p: refused.append(reason.value)
        will.connect("127.0.0.1", broker.port)
        while not refused:
            will.loop(WAIT)
        assert refused == [135]  # CONNACK 5, not authorized (paho says it as 0x87)
        client.disconnect()
        reader.disconnect()


def test_the_acl_decides_who_reads_sys(tmp_path: Path) -> None:
    (tmp_path / "acl").write_text("topic readwrite sensors/#\n"
                                  "user admin\ntopic read $SYS/#\n")
    (tmp_path / "passwd").write_text("")
    subprocess.run(["culex", "passwd", "-b", str(tmp_path / "passwd"), "admin", "secret",
                    "--iterations", "1000"], check=True, capture_output=True)
    config = SYS_CONFIG + 'acl_file = "acl"\npassword_file = "passwd"\nallow_anonymous = true\n'
    with broker_with_config(tmp_path, config) as broker:
        anonymous = Paho(broker.port, mqtt.MQTTv311, "anon").connect()
        for topic in ("$SYS/#", "$SYS/broker/version"):
            assert [int(getattr(g, "value", g)) for g in anonymous.subscribe(topic)] == [128]
        admin = Paho(broker.port, mqtt.MQTTv311, "admin", username="admin",
                     password="secret").connect()
        assert [int(getattr(g, "value", g)) for g in admin.subscribe("$SYS/#")] == [0]
        assert admin.get().topic.startswith("$SYS/broker/")
        # mosquitto_sub, as users type it, sees the tree too.
        result = subprocess.run(["mosquitto_sub", "-p", str(broker.port), "-u", "admin",
                                 "-P", "secret", "-t", "$SYS/broker/version", "-C", "1",
                                 "-W", str(int(WAIT))], capture_output=True, text=True,
                                timeout=WAIT + 5)
        assert result.stdout.startswith("culex version "), result.stderr
        assert anonymous.messages.empty()
        anonymous.disconnect()
        admin.disconnect()
