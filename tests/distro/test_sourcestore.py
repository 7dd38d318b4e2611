"""User sources in the database, on SQLite and PostgreSQL: put/replace, list (sorted by id the same
way on both), delete by id and by name, and a "sources" notification for every write that changed
something."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pgtest
import pytest

from osbuildd.distro.sourcestore import SourceConfig, SourceStore
from osbuildd.queue.db import DATA_CHANNEL, Database


@pytest.fixture
async def db(tmp_path: Path, backend: pgtest.Backend) -> AsyncIterator[Database]:
    database = await pgtest.open_db(backend, tmp_path / "osbuildd.db")
    yield database
    await database.close()


def cfg(name: str, url: str = "https://example.com/repo/", **extra) -> SourceConfig:
    return SourceConfig(name=name, type="yum-baseurl", url=url, **extra)


async def test_put_list_replace(db: Database) -> None:
    store = SourceStore(db)
    assert await store.list() == []
    await store.put("b-repo", cfg("B", gpgkeys=["https://example.com/key"], check_gpg=True))
    await store.put("a-repo", cfg("A"))
    await store.put("B-upper", cfg("upper"))
    await store.put("a_repo", cfg("underscore"))
    # code point order on both backends (PostgreSQL's collation would put these otherwise)
    assert [k for k, _ in await store.list()] == ["B-upper", "a-repo", "a_repo", "b-repo"]
    listed = dict(await store.list())
    assert listed["b-repo"] == cfg("B", gpgkeys=["https://example.com/key"], check_gpg=True)

    await store.put("a-repo", cfg("A2", url="https://example.org/other/"))   # sources change
    listed = dict(await store.list())
    assert listed["a-repo"].name == "A2" and listed["a-repo"].url == "https://example.org/other/"
    assert len(listed) == 4


async def test_delete_by_id_and_name(db: Database) -> None:
    store = SourceStore(db)
    await store.put("one", cfg("first"))
    await store.put("two", cfg("second"))
    await store.put("three", cfg("second"))
    assert await store.delete_by_id("one") is True
    assert await store.delete_by_id("one") is False
    assert await store.delete_by_name("second") is True   # both ids named "second"
    assert await store.delete_by_name("second") is False
    assert await store.list() == []


async def test_unknown_fields_are_dropped(db: Database) -> None:
    """A row written by a newer daemon (extra fields in its JSON) still lists."""
    store = SourceStore(db)
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO weldr_sources (id, name, config) VALUES (?, ?, ?)",
                           ("x", "x", '{"name": "x", "type": "yum-baseurl", "url": "https://e/", "later": 1}'))
    assert await store.list() == [("x", cfg("x", url="https://e/"))]


async def test_writes_notify(db: Database) -> None:
    """Every write that changed a row says "sources" once committed; a no-op delete says nothing."""
    import asyncio

    heard: list[str] = []
    unsubscribe = db.subscribe(DATA_CHANNEL, heard.append)
    store = SourceStore(db)

    async def wait_for(n: int) -> None:
        for _ in range(100):   # PostgreSQL delivers through its listener connection: a moment later
            if len([p for p in heard if p == "sources"]) >= n:
                return
            await asyncio.sleep(0.02)

    await store.put("one", cfg("first"))
    await wait_for(1)
    assert await store.delete_by_id("missing") is False
    assert await store.delete_by_id("one") is True
    await wait_for(2)
    await asyncio.sleep(0.1)
    assert [p for p in heard if p == "sources"] == ["sources", "sources"]
    unsubscribe()
