"""Two daemons on one PostgreSQL database, each with its own database connections, job store and
compose service (and so its own caches): what one of them writes, the other lists and reports on the
first request after the change's notification reached it, never from a stale cache."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator

import pgtest
import pytest

from osbuildd.compose import ComposeNotFound, ComposeService
from osbuildd.config import ResultsConfig
from osbuildd.executor import start_local
from osbuildd.queue import JobError
from osbuildd.queue.db import DATA_CHANNEL, JOBS_CHANNEL
from osbuildd.services import Services

from .helpers import embedded_config
from .test_service import req


class Heard:
    """The notifications a daemon's database received, by channel."""

    def __init__(self, db) -> None:
        self.payloads: dict[str, list[str]] = {DATA_CHANNEL: [], JOBS_CHANNEL: []}
        self._event = asyncio.Event()
        self._off = [db.subscribe(ch, lambda p, ch=ch: self._got(ch, p)) for ch in self.payloads]

    def _got(self, channel: str, payload: str) -> None:
        self.payloads[channel].append(payload)
        self._event.set()

    async def wait(self, channel: str, pred, within: float = 10) -> None:
        async with asyncio.timeout(within):
            while not any(pred(p) for p in self.payloads[channel]):
                self._event.clear()
                await self._event.wait()

    def clear(self) -> None:
        for seen in self.payloads.values():
            seen.clear()

    def close(self) -> None:
        for off in self._off:
            off()


@pytest.fixture
async def daemons(tmp_path, shared_state_dir, pg_url) -> AsyncIterator[tuple[Services, Services]]:
    opened = []
    try:
        for name in ("a", "b"):
            state = tmp_path / name
            state.mkdir()
            os.symlink(shared_state_dir / "cache", state / "cache")   # fakes depsolve: warm apt cache
            config = embedded_config(state, pgtest.Backend("postgresql", pg_url))
            config.results = ResultsConfig(dir=str(tmp_path / "results"))   # shared, as in production
            s = await Services.open(config)
            opened.append(s)
            await start_local(s, start=False)   # nothing takes the jobs: the test moves them
        yield opened[0], opened[1]
    finally:
        for s in opened:
            await s.close()


async def _fresh(s: Services) -> list:
    """What a listing must answer: everything read afresh by a service without caches, slimmed."""
    return [dataclasses.replace(c, packages=[], manifest=None, result=None)
            for c in await ComposeService(s.config, s.db, s.jobs).list()]


async def _synced(writer: Services, heard: Heard, n: int) -> None:
    """Every notification the writer sent so far reached the other daemon (they arrive in commit
    order): a marker of the writer's own, then the heard payloads reset."""
    async with writer.db.transaction():
        await writer.db.notify(DATA_CHANNEL, f"sync-{n}")
    await heard.wait(DATA_CHANNEL, lambda p: p == f"sync-{n}")
    heard.clear()


async def _cached(s: Services):
    """s's listing, answered twice: the second time from its cache (the very same snapshot)."""
    snap = await s.compose.snapshot()
    assert await s.compose.snapshot() is snap
    return snap


async def test_two_daemons_see_each_others_composes(daemons):
    a, b = daemons
    heard_a, heard_b = Heard(a.db), Heard(b.db)
    try:
        # a finished fake through A: B lists it as A does, with its status
        assert (await _cached(b)).composes() == []
        await _synced(a, heard_b, 1)
        await _cached(b)
        fake = await a.compose.create_fake(req(), finished=True)
        await heard_b.wait(DATA_CHANNEL, lambda p: p == "composes")
        listed = (await b.compose.snapshot()).composes()
        assert [c.id for c in listed] == [fake]
        assert listed == (await a.compose.snapshot()).composes() == await _fresh(a)
        assert (await b.compose.get(fake)) == (await a.compose.get(fake))
        assert (await b.compose.get(fake)).state == "finished"

        # a waiting compose through A: B sees it, then each change of its state
        await _synced(a, heard_b, 2)
        await _cached(b)
        cid = await a.compose.start(req())
        await heard_b.wait(DATA_CHANNEL, lambda p: p == "composes")
        assert (await b.compose.find(cid)).state == "waiting"
        assert (await b.compose.snapshot()).composes() == (await a.compose.snapshot()).composes()

        await _synced(a, heard_b, 3)
        await _cached(b)
        token = (await a.jobs.dequeue_by_id(cid)).token
        await heard_b.wait(JOBS_CHANNEL, lambda p: True)
        assert (await b.compose.find(cid)).state == "running"
        assert (await b.compose.get(cid)).state == "running"

        await _synced(a, heard_b, 4)
        await _cached(b)
        await a.jobs.finish(token, {"success": False}, JobError(10, "osbuild build failed"))
        await heard_b.wait(JOBS_CHANNEL, lambda p: True)
        assert (await b.compose.find(cid)).state == "failed"
        assert (await b.compose.get(cid)).state == "failed"
        assert (await b.compose.snapshot()).composes() == (await a.compose.snapshot()).composes() \
            == await _fresh(b)

        # delete through B: gone from A's listing, status and get() (both were cached in A)
        assert (await a.compose.get(fake)) is (await a.compose.get(fake))   # A's get() cache holds it
        await _synced(b, heard_a, 5)
        await _cached(a)
        await b.compose.delete(fake)
        await heard_a.wait(DATA_CHANNEL, lambda p: p == "composes")
        assert [c.id for c in (await a.compose.snapshot()).composes()] == [cid]
        assert await a.compose.find(fake) is None
        with pytest.raises(ComposeNotFound):
            await a.compose.get(fake)
        assert (await a.compose.snapshot()).composes() == (await b.compose.snapshot()).composes() \
            == await _fresh(a)
    finally:
        heard_a.close()
        heard_b.close()


async def test_groups_and_cancel_across_daemons(daemons):
    a, b = daemons
    heard_a, heard_b = Heard(a.db), Heard(b.db)
    try:
        await b.compose.view()
        await _synced(a, heard_b, 1)
        snap, groups = await b.compose.view()
        assert groups.members == {}
        gid = await a.compose.enqueue_group([req(), req()])
        await heard_b.wait(DATA_CHANNEL, lambda p: p == "composes")
        snap, groups = await b.compose.view()
        images = groups.images(gid)
        assert len(images) == 2 and images[0] == gid and groups.hidden(images[1])
        assert [c.id for c in snap.composes()] == [c.id for c in (await a.compose.snapshot()).composes()]
        assert {c.state for c in snap.composes()} == {"waiting"}

        # canceled through B: A's caches see it
        await _synced(b, heard_a, 2)
        await a.compose.view()
        for cid in images:
            await b.compose.cancel(cid)
        for cid in images:   # the job store names the canceled jobs
            await heard_a.wait(JOBS_CHANNEL, lambda p, cid=cid: p.startswith("cancel ") and cid in p.split())
        snap, _ = await a.compose.view()
        assert {c.id: c.state for c in snap.composes()} == {cid: "canceled" for cid in images}
        assert snap.composes() == (await b.compose.snapshot()).composes() == await _fresh(a)

        # the group deleted through A: B lists nothing, and knows no group any more
        await _synced(a, heard_b, 4)
        await b.compose.view()
        assert await a.compose.delete_group(gid) == list(images)
        await heard_b.wait(DATA_CHANNEL, lambda p: heard_b.payloads[DATA_CHANNEL].count("composes") >= 2)
        snap, groups = await b.compose.view()
        assert snap.composes() == [] and groups.members == {}
        assert await b.compose.find(gid) is None
    finally:
        heard_a.close()
        heard_b.close()
