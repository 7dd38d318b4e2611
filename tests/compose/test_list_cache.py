"""ComposeService.snapshot() keeps settled (finished/failed/canceled) composes in memory: it must answer
exactly what a fresh read of the database answers (slimmed: no packages, manifest, result), at every
step of a compose's life."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random

import pytest

from osbuildd.compose import ComposeService, store
from osbuildd.executor import start_local
from osbuildd.queue import JobError, JobStatus
from osbuildd.services import Services

from .helpers import embedded_config
from .test_listing import _delete_job, _graph
from .test_service import req


@pytest.fixture
async def services(tmp_path, shared_state_dir, backend):
    (tmp_path / "state").mkdir()
    os.symlink(shared_state_dir / "cache", tmp_path / "state" / "cache")   # start() depsolves: warm apt cache
    s = await Services.open(embedded_config(tmp_path / "state", backend))
    await start_local(s, start=False)   # nothing takes the jobs: the test moves them
    yield s
    await s.close()


async def _uncached(services) -> list:
    """What snapshot() must answer: a fresh read of everything, slimmed."""
    return [dataclasses.replace(c, packages=[], manifest=None, result=None)
            for c in await ComposeService(services.config, services.db, services.jobs).list()]


class _Listed:
    """snapshot().composes() under the name the steps below read best."""

    def __init__(self, svc) -> None:
        self.svc = svc

    async def list(self) -> list:
        return (await self.svc.snapshot()).composes()


class _Svc(_Listed):
    """The compose service, whose list() is its cached snapshot."""

    def __getattr__(self, name: str):
        return getattr(self.svc, name)


async def _take(services, job_id: str) -> str:
    return (await services.jobs.dequeue_by_id(job_id)).token


async def _run(services, cid: str) -> str:
    """Take the build job (running; depsolve and manifest ran in the request); returns its token."""
    return await _take(services, cid)


async def _state(services, cid: str) -> str | None:
    found = [c for c in await _Listed(services.compose).list() if c.id == cid]
    return found[0].state if found else None


async def test_lifecycle_is_seen_at_every_step(services):
    svc = _Svc(services.compose)
    other = await svc.create_fake(req(), finished=True)
    assert await svc.list() == await _uncached(services)   # first list fills the cache

    cid = await svc.start(req())
    assert await _state(services, cid) == "waiting"
    assert await svc.list() == await _uncached(services)

    token = await _run(services, cid)
    assert await _state(services, cid) == "running"
    await services.jobs.set_progress(cid, {"percent": 50.0})
    assert next(c for c in await svc.list() if c.id == cid).progress == {"percent": 50.0}
    assert await svc.list() == await _uncached(services)

    await services.jobs.finish(token, {"success": True, "target_results": []})
    assert await _state(services, cid) == "finished"   # right away: no stale cache
    listed = await svc.list()
    assert listed == await _uncached(services)
    assert "systemd" in [p.name for p in (await svc.get(cid)).packages]   # get() has them all
    # a settled compose is now served from memory: the very same object again
    again = await svc.list()
    assert next(c for c in again if c.id == cid) is next(c for c in listed if c.id == cid)

    await svc.delete(cid)
    assert [c.id for c in await svc.list()] == [other]
    assert await svc.list() == await _uncached(services)
    await svc.delete(other)
    assert await svc.list() == []


async def test_failed_and_canceled_composes(services):
    svc = _Svc(services.compose)
    assert await svc.list() == []
    failed, canceled = await svc.start(req()), await svc.start(req())
    token = await _run(services, failed)
    await svc.list()
    await services.jobs.finish(token, {"success": False}, JobError(10, "osbuild build failed"))
    await svc.cancel(canceled)
    states = {c.id: c.state for c in await svc.list()}
    assert states == {failed: "failed", canceled: "canceled"}
    assert await svc.list() == await _uncached(services)


async def test_changes_behind_the_services_back_are_seen(services):
    """Rows written or deleted without the service (another tool on the same database)."""
    svc = _Svc(services.compose)
    await svc.list()
    jobs, cid, dep, _ = _graph("finished", 1)
    await store.insert_graph(services.db, services.jobs, jobs, {
        "id": cid, "depsolve_job": dep, "manifest_job": jobs[1].id, "request": {}, "blueprint_name": "x",
        "image_type": "qcow2", "distro": "debian-12", "arch": "x86_64", "image_filename": "disk.qcow2"}, "")
    listed = await svc.list()
    assert [c.id for c in listed] == [cid] and listed[0] == (await _uncached(services))[0]
    await _delete_job(services, dep)       # its depsolve job: the compose is read again
    listed = await svc.list()
    assert listed == await _uncached(services)
    await _delete_job(services, cid)       # its build job: the compose is no longer listed
    assert await svc.list() == []


async def test_concurrent_readers_see_consistent_listings(services):
    """Readers list while composes are started, run, finished and deleted: every listing is ordered,
    has no duplicates, and for one reader a compose never goes back to an earlier state or comes
    back after its delete."""
    svc = _Svc(services.compose)
    rank = {"waiting": 0, "running": 1, "finished": 2, "failed": 2, None: 3}
    done = asyncio.Event()

    async def driver() -> None:
        rnd = random.Random(7)
        for i in range(12):
            cid = await svc.start(req())
            await asyncio.sleep(0)
            token = await _run(services, cid)
            await asyncio.sleep(0)
            if i % 3 == 2:
                await services.jobs.finish(token, {"success": False}, JobError(10, "failed"))
            else:
                await services.jobs.finish(token, {"success": True, "target_results": []})
            if rnd.random() < 0.5:
                await svc.delete(cid)
        done.set()

    async def reader() -> list[list]:
        seen: list[list] = []
        while not done.is_set():
            seen.append(await svc.list())
            await asyncio.sleep(0)
        seen.append(await svc.list())
        return seen

    results = await asyncio.gather(driver(), *(reader() for _ in range(8)))
    final = await _uncached(services)
    for seen in results[1:]:
        last: dict[str, int] = {}
        for listing in seen:
            ids = [c.id for c in listing]
            assert len(ids) == len(set(ids))
            assert listing == sorted(listing, key=lambda c: (c.created, c.id))
            assert all(c.job_status in set(JobStatus) for c in listing)
            now = {c.id: rank[c.state] for c in listing}
            for cid, r in last.items():
                assert now.get(cid, rank[None]) >= r, cid
            last = {**last, **now, **{cid: rank[None] for cid in last if cid not in now}}
        assert seen[-1] == final
