"""Brokers for the client tools' tests: culex, and a real Mosquitto started here."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support import WAIT, BrokerProcess

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


@dataclass
class Broker:
    kind: str  # "culex" or "mosquitto"
    port: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    """A real Mosquitto on a free loopback port, anonymous clients allowed."""
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    lines = [f"listener {port} 127.0.0.1", "allow_anonymous true",
             f"log_dest file {tmp_path / 'mosquitto.log'}", "log_type error"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        lines.append("user root")  # as root, Mosquitto would switch to a user that may not exist
    conf.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)])
    try:
        deadline = time.monotonic() + WAIT
        while True:  # listening once a connection is accepted
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=WAIT):
                    break
            except ConnectionRefusedError:
                assert proc.poll() is None, "mosquitto exited"
                assert time.monotonic() < deadline, "mosquitto did not listen"
                time.sleep(0.02)
        yield Broker("mosquitto", port)
    finally:
        proc.terminate()
        proc.wait(WAIT)


@pytest.fixture
def culex_broker() -> Iterator[Broker]:
    process = BrokerProcess("--no-persistence").start()
    try:
        yield Broker("culex", process.port)
    finally:
        process.stop()


@pytest.fixture(params=["culex", "mosquitto"])
def any_broker(request: pytest.FixtureRequest) -> Broker:
    """Each test that uses it runs against culex and against Mosquitto."""
    broker: Broker = request.getfixturevalue("culex_broker" if request.param == "culex"
                                             else "mosquitto")
    return broker
