"""Fixtures of the blueprint tests: a real SQLite database file per test."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from testdata import WELDR

from osbuildd.blueprint.store import BlueprintStore
from osbuildd.queue.db import Database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "osbuildd.db")
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
