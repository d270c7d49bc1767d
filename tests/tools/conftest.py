"""Brokers for the client tools' tests: culex, and a real Mosquitto started here."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support import BrokerProcess, MosquittoProcess

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


@dataclass
class Broker:
    kind: str  # "culex" or "mosquitto"
    port: int


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    """A real Mosquitto on a free loopback port, anonymous clients allowed."""
    process = MosquittoProcess(tmp_path).start()
    try:
        yield Broker("mosquitto", process.port)
    finally:
        process.stop()


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
