"""culex rr beside mosquitto_rr, and culex bench against culex and against Mosquitto: exact
counts, rates that agree with counts and time, sane latencies, --json, the status line on a
terminal, and the warning when the tool is the bottleneck."""

from __future__ import annotations

import argparse
import json
import os
import pty
import select
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from culex.tools._bench import _Board
from culex.tools._bench_worker import bucket_of

from support import WAIT, Endpoint


def culex(*args: str) -> list[str]:
    return [sys.executable, "-m", "culex", *args]


@pytest.fixture
def responder(any_broker: Endpoint) -> Iterator[Endpoint]:
    """A service answering requests on service/# in upper case, correlation data echoed."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="responder",
                         protocol=mqtt.MQTTv5)
    subscribed = threading.Event()

    def on_message(c: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        props = Properties(PacketTypes.PUBLISH)
        if getattr(message.properties, "CorrelationData", None) is not None:
            props.CorrelationData = message.properties.CorrelationData
        c.publish(message.properties.ResponseTopic, message.payload.upper(), 1,
                  properties=props)

    client.on_message = on_message
    client.on_subscribe = lambda *args: subscribed.set()
    client.connect("127.0.0.1", any_broker.port)
    client.loop_start()
    client.subscribe("service/#", 1)
    assert subscribed.wait(WAIT)
    yield any_broker
    client.disconnect()
    client.loop_stop()


def test_rr_as_mosquitto_rr(responder: Endpoint) -> None:
    outputs = []
    for tool in (["mosquitto_rr"], culex("rr")):
        result = subprocess.run([*tool, "-h", "127.0.0.1", "-p", str(responder.port), "-t",
                                 "service/upper", "-e", f"replies/{len(outputs)}", "-m",
                                 "hello", "-W", str(int(WAIT))], capture_output=True,
                                timeout=WAIT * 2)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    assert outputs == [b"HELLO\n", b"HELLO\n"]
    late = subprocess.run(culex("rr", "-h", "127.0.0.1", "-p", str(responder.port), "-t",
                                "nobody/listens", "-e", "replies/x", "-m", "?", "-W", "1"),
                          capture_output=True, timeout=WAIT)
    assert (late.returncode, late.stderr) == (27, b"Timed out\n")


def bench(broker: Endpoint, *args: str) -> dict[str, object]:
    result = subprocess.run(culex("bench", *args, "-h", "127.0.0.1", "-p", str(broker.port),
                                  "--json"), capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    summary: dict[str, object] = json.loads(result.stdout)
    return summary


@pytest.mark.parametrize("qos", [1, 2])
def test_pubsub_counts_are_exact(any_broker: Endpoint, qos: int) -> None:
    summary = bench(any_broker, "pubsub", "-c", "5", "--subscribers", "1", "-I", "0", "-q",
                    str(qos), "-F", "8", "-L", "3000", "-t", f"exact/{qos}/%i",
                    "--workers", "2")
    assert (summary["published"], summary["received"], summary["refused"]) == (3000, 3000, 0)
    assert summary["connected"] == 5 and summary["connect_failures"] == 0
    active = float(summary["active_seconds"])  # type: ignore[arg-type]
    # The rate is the count over the time the messages flowed.
    assert abs(float(summary["publish_rate"]) * active - 3000) < 30  # type: ignore[arg-type]
    latency = summary["latency_ms"]
    assert isinstance(latency, dict) and 0 < latency["p50"] <= latency["p99"] < 5000


def test_a_paced_run_has_paced_rates_and_small_latencies(any_broker: Endpoint) -> None:
    summary = bench(any_broker, "pubsub", "-c", "3", "--subscribers", "1", "-I", "20", "-q",
                    "0", "--duration", "3", "-t", "paced/%i")
    # Two publishers, one message each per 20 ms: 100 a second while messages flow.
    published = int(summary["published"])  # type: ignore[call-overload]
    active = float(summary["active_seconds"])  # type: ignore[arg-type]
    assert active > 1 and abs(published - 100 * active) <= 0.2 * 100 * active + 4
    assert summary["received"] == published
    latency = summary["latency_ms"]
    assert isinstance(latency, dict) and 0 < latency["p50"] < 20 and latency["p99"] < 200


def test_conn_and_plain_pub(any_broker: Endpoint) -> None:
    summary = bench(any_broker, "conn", "-c", "60", "-i", "2", "--duration", "1",
                    "--workers", "2")
    assert (summary["connected"], summary["connect_failures"]) == (60, 0)
    assert summary["latency_of"] == "connect"
    summary = bench(any_broker, "pub", "-c", "4", "-I", "0", "-L", "20000", "-s", "32")
    assert summary["published"] == 20000
    assert summary["tool_cpu_us_per_message"] is not None


def test_status_line_is_rewritten_in_place_on_a_terminal(culex_broker: Endpoint) -> None:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(culex("bench", "pub", "-h", "127.0.0.1", "-p",
                                  str(culex_broker.port), "-c", "2", "-I", "50",
                                  "--duration", "2.5"),
                            stdin=follower, stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + WAIT
    while proc.poll() is None and time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                seen += os.read(leader, 4096)
            except OSError:
                break
    out, _ = proc.communicate(timeout=WAIT)
    os.close(leader)
    assert proc.returncode == 0
    assert seen.count(b"\r\x1b[K") >= 2 and b"conn 2/2" in seen  # rewritten, not scrolled
    assert out.startswith(b"pub: ")  # the summary, on standard output


def test_the_tool_says_when_it_is_the_bottleneck() -> None:
    args = argparse.Namespace(mode="pub", count=1, workers=1)
    lines: list[str] = []

    class Out:
        def isatty(self) -> bool:
            return False

        def write(self, text: str) -> None:
            lines.append(text)

        def flush(self) -> None:
            pass

    board = _Board(args, 1, Out())  # type: ignore[arg-type]
    for _ in range(3):
        board.add(0, {"connected": 1, "subscribed": 0, "done": False, "failed": 0,
                      "published": 1000, "received": 0, "refused": 0,
                      "latency": Counter({bucket_of(500): 10}), "cpu": 0.97,
                      "first": 1, "last": 2})
        board.last -= 1.0  # a second has passed
        board.tick()
    warnings = [line for line in lines if line.startswith("warning:")]
    assert len(warnings) == 1 and "97% of a CPU core" in warnings[0]
    assert board.summary()["tool_was_bottleneck"] is True
