"""Session-wide fixtures shared by every test package.

Builds are slow on 2 cores, so every test that builds uses one engine store and one depsolve cache
(``shared_state_dir``) and each image is built once per run by a session-scoped fixture.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pgtest
import pytest
import warmstore

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_state_dir() -> Path:
    """A state dir whose store/ and cache/ are reused by every building test in this run.

    Bounded between runs: cut back here and when the session ends (tests/warmstore.py)."""
    path = warmstore.state_dir()
    (path / "store").mkdir(parents=True, exist_ok=True)
    (path / "cache").mkdir(parents=True, exist_ok=True)
    warmstore.prune(path)            # also after a run that was killed before its end
    _WARM_USED.append(path)
    return path


_WARM_USED: list[Path] = []


@pytest.hookimpl(trylast=True)    # after the session fixtures (daemons, builds) are torn down
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for path in _WARM_USED:
        warmstore.prune(path)


@pytest.fixture(scope="session")
def require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("this test needs root (loop devices, mounts, chroot)")


def need_tool(name: str) -> str:
    """Path of a host tool the test needs; a missing one fails loudly (CI installs them)."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")
    if not found:
        pytest.fail(f"{name} is not installed: run `make test` (scripts/setup.sh --test) first")
    return found


# --- PostgreSQL (issue 17): the private cluster of scripts/test-pg.sh, helpers in tests/pgtest.py ---


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """Admin URL of the test cluster; skips without it (fails under OSBUILDD_TEST_REQUIRE_PG=1)."""
    return pgtest.admin_url()


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh empty database per test (NOTIFY channels and advisory locks are per database)."""
    url = pgtest.run_sync(pgtest.create_database(pg_admin_url))
    yield url
    pgtest.run_sync(pgtest.drop_database(pg_admin_url, url))


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> pgtest.Backend:
    """Each test using it runs once per backend; only the postgresql case needs the cluster."""
    if request.param == "postgresql":
        return pgtest.Backend("postgresql", request.getfixturevalue("pg_url"))
    return pgtest.Backend("sqlite")
