from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from certs import CertSet, make_cert_set
from support import BrokerProcess, running_broker

# The machines running the suite are shared: a slow moment must not fail a property test.
# What hypothesis checks is correctness; speed is measured in benchmarks/.
settings.register_profile("culex", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("culex")


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def no_unhandled_loop_errors() -> Iterator[None]:
    """An exception in a callback of a test's own event loop (or in a task nobody awaited) is
    only logged by asyncio, and the test would pass: it fails the test. Brokers the tests start
    as processes are checked by their log (support.BrokerProcess.assert_no_traceback)."""
    errors = _Errors()
    logger = logging.getLogger("asyncio")
    logger.addHandler(errors)
    try:
        yield
    finally:
        logger.removeHandler(errors)
    if errors.records:
        pytest.fail("asyncio logged an unhandled exception: "
                    + "; ".join(errors.format(record) for record in errors.records))


@pytest.fixture
def broker() -> Iterator[BrokerProcess]:
    """A fresh ``culex serve`` on a free loopback port."""
    with running_broker() as process:
        yield process


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertSet:
    """A CA, a server certificate and client certificates (good, expired, foreign)."""
    return make_cert_set(tmp_path_factory.mktemp("certs"))
