"""Brokers for the client tools' tests: culex, and a real Mosquitto started here."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import BrokerProcess, Endpoint, MosquittoProcess

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Endpoint]:
    """A real Mosquitto on a free loopback port, anonymous clients allowed."""
    process = MosquittoProcess(tmp_path).start()
    try:
        yield Endpoint("mosquitto", process.port)
    finally:
        process.stop()


@pytest.fixture
def culex_broker() -> Iterator[Endpoint]:
    process = BrokerProcess("--no-persistence").start()
    try:
        yield Endpoint("culex", process.port)
    finally:
        process.stop()


@pytest.fixture(params=["culex", "mosquitto"])
def any_broker(request: pytest.FixtureRequest) -> Endpoint:
    """Each test that uses it runs against culex and against Mosquitto."""
    broker: Endpoint = request.getfixturevalue("culex_broker" if request.param == "culex"
                                             else "mosquitto")
    return broker
