"""Fixtures of the foundation tests: a fresh database + job store per test, daemon helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pgtest
import pytest

from osbuildd.queue import Database, JobStore


@pytest.fixture
async def db(tmp_path: Path, backend: pgtest.Backend) -> AsyncIterator[Database]:
    """Each test runs on SQLite and on PostgreSQL, with the same expectations."""
    database = await pgtest.open_db(backend, tmp_path / "state" / "osbuildd.db")
    yield database
    await database.close()


@pytest.fixture
async def jobs(db: Database, tmp_path: Path) -> AsyncIterator[JobStore]:
    store = await JobStore.open(db, state_dir=tmp_path / "state")
    yield store
    await store.close()
