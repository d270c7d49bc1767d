"""The Eclipse Paho C client (Debian's paho.mqtt.c-examples: paho_c_pub, paho_c_sub)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from support import WAIT, BrokerProcess

assert shutil.which("paho_c_pub"), "paho.mqtt.c-examples is needed: run scripts/test"

VERSIONS = {"3.1": "31", "3.1.1": "311", "5": "5"}


def paho_c_pub(port: int, *args: str) -> None:
    subprocess.run(["paho_c_pub", "-h", "127.0.0.1", "-p", str(port), *args], check=True,
                   capture_output=True, timeout=WAIT)


def payload_of(line: str) -> str:
    """paho_c_sub prints each message as "<length> <topic>\t<payload>"."""
    return line.rstrip("\n").partition("\t")[2]


@pytest.mark.parametrize("qos", ["0", "1", "2"])
@pytest.mark.parametrize("version", list(VERSIONS))
def test_paho_c_publish_subscribe(broker: BrokerProcess, version: str, qos: str) -> None:
    flag = VERSIONS[version]
    # A retained marker tells when the subscription is in place: it arrives right after SUBACK.
    paho_c_pub(broker.port, "-t", "c/ready", "-m", "ready", "-r", "-q", "1")
    sub = subprocess.Popen(["stdbuf", "-oL", "paho_c_sub", "-h", "127.0.0.1", "-p",
                            str(broker.port), "-t", "c/#", "-q", qos, "-V", flag, "-i",
                            f"c-sub-{flag}-{qos}"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    try:
        assert sub.stdout is not None
        for _ in range(5):  # it prints its URL and subscription before any message
            if payload_of(sub.stdout.readline()) == "ready":
                break
        else:
            raise AssertionError("paho_c_sub never received the retained marker")
        for i in range(3):
            paho_c_pub(broker.port, "-t", f"c/{i}", "-m", f"message {i}", "-q", qos, "-V", flag,
                       "-i", f"c-pub-{flag}-{qos}")
        got = [payload_of(sub.stdout.readline()) for _ in range(3)]
        assert got == ["message 0", "message 1", "message 2"]
    finally:
        sub.kill()
        sub.wait(WAIT)
