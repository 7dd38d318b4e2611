"""Fixtures of the scale-out tests (helpers in tests/scaleout/cluster.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cloud.tlsutil import gen_certs


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``osbuildd gen-certs`` itself: the worker certificate is CN=localhost, the daemons' ``localhost``."""
    return gen_certs(tmp_path_factory.mktemp("certs") / "x509")
