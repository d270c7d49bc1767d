"""The Debian mosquitto-clients tools against a real culex."""

from __future__ import annotations

import shutil
import subprocess

import paho.mqtt.client as mqtt
import pytest

from paho_client import Paho
from support import WAIT, BrokerProcess

# Not skipped when missing: scripts/test installs mosquitto-clients, and a silent skip would
# hide a broken install step.
assert shutil.which("mosquitto_pub"), "mosquitto-clients is needed: run scripts/test"

FLAGS = {"3.1": "mqttv31", "3.1.1": "mqttv311", "5": "mqttv5"}


def mosquitto_pub(port: int, *args: str) -> None:
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), *args],
                   check=True, timeout=WAIT, capture_output=True)


def start_sub(port: int, *args: str) -> subprocess.Popen[str]:
    # -d prints the SUBACK, which tells us when the subscription is in place; stdbuf makes
    # the tool write each line as it happens instead of when its pipe buffer fills.
    return subprocess.Popen(["stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", str(port),
                             "-d", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_subscribed(proc: subprocess.Popen[str]) -> list[str]:
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "SUBACK" in line:
            return seen
    raise AssertionError("mosquitto_sub never got a SUBACK: " + "".join(seen))


@pytest.mark.parametrize("qos", ["0", "1", "2"])
@pytest.mark.parametrize("version", list(FLAGS))
def test_mosquitto_pub_to_mosquitto_sub(broker: BrokerProcess, version: str, qos: str) -> None:
    sub = start_sub(broker.port, "-V", FLAGS[version], "-q", qos, "-t", "m/#", "-C", "2",
                    "-F", "%t %q %p", "-W", str(int(WAIT)))
    wait_subscribed(sub)
    mosquitto_pub(broker.port, "-V", FLAGS[version], "-q", qos, "-t", "m/a", "-m", "one")
    mosquitto_pub(broker.port, "-V", FLAGS[version], "-q", qos, "-t", "m/b", "-m", "two")
    out, _ = sub.communicate(timeout=WAIT)
    assert sub.returncode == 0
    lines = [line for line in out.splitlines() if line.startswith("m/")]
    assert lines == [f"m/a {qos} one", f"m/b {qos} two"]


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_mosquitto_pub_to_paho(broker: BrokerProcess, qos: int) -> None:
    sub = Paho(broker.port, mqtt.MQTTv5, "paho-sub").connect()
    sub.subscribe("x/+", 2)
    mosquitto_pub(broker.port, "-V", "mqttv311", "-q", str(qos), "-t", "x/y", "-m", "hi")
    message = sub.get()
    assert (message.topic, message.payload, message.qos) == ("x/y", b"hi", qos)
    sub.disconnect()


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_paho_to_mosquitto_sub(broker: BrokerProcess, qos: int) -> None:
    sub = start_sub(broker.port, "-V", "mqttv5", "-q", "2", "-t", "p/#", "-C", "1",
                    "-F", "%t %q %p", "-W", str(int(WAIT)))
    wait_subscribed(sub)
    pub = Paho(broker.port, mqtt.MQTTv31, "paho-pub").connect()
    pub.publish("p/q", b"from paho", qos)
    out, _ = sub.communicate(timeout=WAIT)
    assert f"p/q {qos} from paho" in out.splitlines()
    pub.disconnect()


def test_retained_with_mosquitto(broker: BrokerProcess) -> None:
    mosquitto_pub(broker.port, "-t", "sensors/t1", "-m", "21.5", "-r", "-q", "1")
    out = subprocess.run(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-t", "sensors/#",
         "-C", "1", "-F", "%r %t %p", "-W", str(int(WAIT))],
        capture_output=True, text=True, timeout=WAIT, check=True).stdout
    assert out.strip() == "1 sensors/t1 21.5"  # retained: flag set (3.1.1: MQTT-3.3.1-8)


def test_will_with_mosquitto_sub(broker: BrokerProcess) -> None:
    watcher = start_sub(broker.port, "-t", "status/#", "-C", "1", "-F", "%t %p",
                        "-W", str(int(WAIT)))
    wait_subscribed(watcher)
    dying = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port),
                              "-i", "dying", "-t", "never", "--will-topic", "status/dying",
                              "--will-payload", "offline"], stdout=subprocess.DEVNULL)
    broker.wait_for_log(r"connected: client dying ")
    dying.kill()  # no DISCONNECT: the will goes out
    dying.wait(WAIT)
    out, _ = watcher.communicate(timeout=WAIT)
    assert "status/dying offline" in out.splitlines()
