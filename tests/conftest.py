from __future__ import annotations

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


@pytest.fixture
def broker() -> Iterator[BrokerProcess]:
    """A fresh ``culex serve`` on a free loopback port."""
    with running_broker() as process:
        yield process


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertSet:
    """A CA, a server certificate and client certificates (good, expired, foreign)."""
    return make_cert_set(tmp_path_factory.mktemp("certs"))
