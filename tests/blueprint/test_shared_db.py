"""Several daemons on one database: a BlueprintStore sees changes it did not make (NOTIFY on
PostgreSQL, a reconnect's empty payload on either backend), tells its on_change listeners, and the
Weldr views built on it drop what they rendered."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from osbuildd.api.weldr import bpstore
from osbuildd.blueprint import Blueprint
from osbuildd.blueprint.store import BlueprintStore
from osbuildd.queue.db import DATA_CHANNEL, Database
from osbuildd.queue.db_pg import PGDatabase


def bp(name: str, version: str = "0.0.1", packages: list | None = None) -> Blueprint:
    return Blueprint.from_json({"name": name, "version": version, "packages": packages or []})


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 2.0) -> bool:
    """True as soon as ``check()`` is; False after ``within`` seconds (a NOTIFY takes a moment)."""
    deadline = time.monotonic() + within
    while True:
        if await check():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)


@pytest.fixture
async def two(pg_url: str) -> AsyncIterator[tuple[PGDatabase, PGDatabase]]:
    """Two "daemons": two PGDatabase instances on the same test database."""
    a = await PGDatabase.open(pg_url, pool_size=2, application_name="daemon-a")
    b = await PGDatabase.open(pg_url, pool_size=2, application_name="daemon-b")
    yield a, b
    await a.close()
    await b.close()


async def test_two_daemons_see_each_other(two: tuple[PGDatabase, PGDatabase]) -> None:
    db_a, db_b = two
    a, b = BlueprintStore(db_a), BlueprintStore(db_b)
    fired_a: list[int] = []
    fired_b: list[int] = []
    a.on_change(lambda: fired_a.append(1))
    b.on_change(lambda: fired_b.append(1))
    assert await b.list_names() == [] and await a.list_names() == []   # both loaded (and cached)

    await a.push(bp("shared", packages=[{"name": "tmux"}]))

    async def b_sees_push() -> bool:
        got = await b.get("shared")
        return "shared" in await b.list_names() and got is not None and got[0].packages[0].name == "tmux"
    assert await eventually(b_sees_push)
    assert fired_b, "B's on_change fired for A's push"

    # B bumps from the version A committed (read from the database, not B's memory)
    await b.push(bp("shared", packages=[{"name": "vim"}]))
    assert (await b.get_committed("shared")).version == "0.0.2"

    async def a_sees_bump() -> bool:
        got = await a.get_committed("shared")
        return got is not None and got.version == "0.0.2"
    assert await eventually(a_sees_bump)

    await b.delete("shared")

    async def a_sees_delete() -> bool:
        return await a.list_names() == [] and await a.get("shared") is None
    assert await eventually(a_sees_delete)
    assert fired_a, "A's on_change fired for B's writes"
    assert len(await a.changes("shared")) == 2   # history stays after delete, on both
    assert [c.commit for c in await a.changes("shared")] == [c.commit for c in await b.changes("shared")]


async def test_own_commits_need_no_reload(two: tuple[PGDatabase, PGDatabase]) -> None:
    db_a, _ = two
    a = BlueprintStore(db_a)
    fired: list[int] = []
    a.on_change(lambda: fired.append(1))
    await a.push(bp("mine"))
    await a.set_workspace(bp("mine", packages=[{"name": "ws"}]))

    async def own_back() -> bool:
        return a._own_pending == 0
    assert await eventually(own_back)   # both notifications came back ...
    assert fired == [] and a._fresh()   # ... and were taken as this store's own


async def test_weldr_views_follow_another_daemon(two: tuple[PGDatabase, PGDatabase]) -> None:
    db_a, db_b = two
    a, b = BlueprintStore(db_a), BlueprintStore(db_b)
    bpstore.watch(b)
    await bpstore.push(b, bp("viewed", packages=[{"name": "tmux"}]))
    rendered, _ = await bpstore.current_dict(b, "viewed")
    assert rendered is not None and rendered["packages"][0]["name"] == "tmux"

    await a.set_workspace(bp("viewed", packages=[{"name": "emacs"}]))

    async def view_updated() -> bool:
        rendered, changed = await bpstore.current_dict(b, "viewed")
        return changed and rendered is not None and rendered["packages"][0]["name"] == "emacs"
    assert await eventually(view_updated)


async def test_unknown_change_reloads(db: Database, store: BlueprintStore) -> None:
    """A reconnect's empty payload (notifications may have been lost) makes the next read reload:
    a row written behind the store's back shows only then."""
    fired: list[int] = []
    store.on_change(lambda: fired.append(1))
    await store.push(bp("known"))
    async with db.transaction() as conn:   # behind the store's back: no notification
        await conn.execute("DELETE FROM blueprints WHERE name = ?", ("known",))
    assert await store.list_names() == ["known"]   # memory, as nothing said otherwise
    db._fan_out(DATA_CHANNEL, "")
    assert fired == [1]
    assert await store.list_names() == []


async def test_other_payloads_are_ignored(db: Database, store: BlueprintStore) -> None:
    fired: list[int] = []
    store.on_change(lambda: fired.append(1))
    assert await store.list_names() == []
    db._fan_out(DATA_CHANNEL, "sources")
    assert fired == [] and store._fresh()
    store.close()
    db._fan_out(DATA_CHANNEL, "")
    assert fired == []
