"""Fixtures for the worker API over TCP with real TLS (helpers in tests/worker_api/wdaemon.py).

- ``certs`` (session): a directory made by ``osbuildd gen-certs`` itself.
- ``wd``: ``osbuildd serve`` with ``[worker_api]`` over mTLS (``allowed_domains = ["localhost"]``: the
  gen-certs worker certificate passes, its client one does not), ``request_job_timeout = 1`` (an empty
  queue answers 204 after a second), ``local_executor = false`` (nothing runs in the daemon).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cloud.tlsutil import gen_certs

from .wdaemon import WorkerDaemon, mtls_worker, worker_daemon


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gen_certs(tmp_path_factory.mktemp("certs") / "x509")


@pytest.fixture
async def wd(tmp_path: Path, certs: Path) -> AsyncIterator[WorkerDaemon]:
    async with worker_daemon(tmp_path, certs, mtls_worker(certs, request_job_timeout=1)) as daemon:
        yield daemon
