from __future__ import annotations

from pathlib import Path

import pytest

from certs import CertSet, make_cert_set


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertSet:
    return make_cert_set(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def files(tmp_path: Path) -> Path:
    return tmp_path
