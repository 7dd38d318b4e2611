"""Fixtures of the blueprint tests: a real database per test, SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pgtest
import pytest
from testdata import WELDR

from osbuildd.blueprint.store import BlueprintStore
from osbuildd.queue.db import Database


@pytest.fixture
async def db(tmp_path: Path, backend: pgtest.Backend) -> AsyncIterator[Database]:
    """Each test runs on SQLite and on PostgreSQL, with the same expectations."""
    database = await pgtest.open_db(backend, tmp_path / "osbuildd.db")
    yield database
    await database.close()


@pytest.fixture
def store(db: Database) -> BlueprintStore:
    return BlueprintStore(db)


@pytest.fixture(scope="session")
def recorded():
    """Load one recording of upstream's Weldr API by its number prefix (e.g. "015")."""
    folder = WELDR / "recorded"

    def load(prefix: str) -> dict:
        (path,) = folder.glob(f"{prefix}-*.json")
        return json.loads(path.read_text())

    return load
