from __future__ import annotations

from collections.abc import Iterator

import pytest

from support import BrokerProcess, running_broker


@pytest.fixture
def broker() -> Iterator[BrokerProcess]:
    """A fresh ``culex serve`` on a free loopback port."""
    with running_broker() as process:
        yield process
