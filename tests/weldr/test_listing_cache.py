"""The compose listings (queue, finished, failed, status) answer from caches of settled composes: at every
step of a compose's life each route must show its right state, byte for byte what rendering every entry
afresh from the database gives."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from osbuildd.api.weldr.composeview import entry, state
from osbuildd.api.weldr.util import dumps
from osbuildd.compose import ComposeService
from osbuildd.queue import JobError, JobStore

from .realdaemon import daemon_and_worker

BP = {"name": "cached-listing", "version": "1.0.0", "packages": [{"name": "curl"}]}
# Go's encoder escapes < > & in strings: the cached entries must too
AWS = {"provider": "aws", "image_name": "ami<1>&co",
       "settings": {"region": "eu-central-1", "accessKeyID": "AKID", "secretAccessKey": "secret", "bucket": "b"}}


@pytest.fixture
async def daemon(tmp_path: Path, shared_state_dir: Path):
    async with daemon_and_worker(tmp_path, shared_state_dir) as parts:
        yield parts


async def _expected(fresh: ComposeService, v: int) -> dict[str, str]:
    """Each listing's body as the routes rendered it before any cache: every entry from a fresh read."""
    composes = await fresh.list()
    by_id = sorted(composes, key=lambda x: x.id)
    return {
        "queue": dumps({"new": [entry(x, v) for x in composes if state(x) == "WAITING"],
                        "run": [entry(x, v) for x in composes if state(x) == "RUNNING"]}),
        "finished": dumps({"finished": [entry(x, v) for x in by_id if state(x) == "FINISHED"]}),
        "failed": dumps({"failed": [entry(x, v) for x in by_id if state(x) == "FAILED"]}),
        "status/*": dumps({"uuids": [entry(x, v) for x in by_id]}),
        "status/*?status=FINISHED": dumps({"uuids": [entry(x, v) for x in by_id if state(x) == "FINISHED"]}),
    }


async def _check_all(c, fresh: ComposeService) -> dict[str, dict]:
    """Every listing route in v0 and v1 equals the fresh rendering; returns the v1 bodies parsed."""
    out = {}
    for v in (0, 1):
        for route, body in (await _expected(fresh, v)).items():
            r = await c.get(f"/api/v{v}/compose/{route}")
            assert r.status == 200 and r.headers["Content-Type"] == "application/json; charset=utf-8"
            assert r.text == body, (v, route)
            if v == 1:
                out[route] = r.json()
    return out


def _where(bodies: dict[str, dict], cid: str) -> dict[str, str]:
    """Which list of which route shows ``cid``, with its queue_status."""
    found = {}
    for route, body in bodies.items():
        for name, entries in body.items():
            for e in entries:
                if e["id"] == cid:
                    found[f"{route}:{name}"] = e["queue_status"]
    return found


async def _take(jobs: JobStore, job_id: str) -> str:
    return (await asyncio.wait_for(jobs.dequeue_by_id(job_id, owner="test-worker"), 10)).token


async def _start(c, jobs: JobStore, fresh: ComposeService) -> str:
    r = await c.post_json("/api/v1/compose", {"blueprint_name": BP["name"], "compose_type": "qcow2",
                                              "branch": "master", "upload": AWS})
    assert r.status == 200, r.text
    return r.json()["build_id"]


async def _run(jobs: JobStore, fresh: ComposeService, cid: str) -> str:
    """Take the build job (depsolve and manifest ran in the request); returns its token."""
    return await _take(jobs, cid)


async def test_compose_life_in_every_listing(daemon) -> None:
    c, jobs, fresh = daemon
    assert (await c.post_json("/api/v1/blueprints/new", BP)).status == 200
    done = (await c.post_json("/api/v1/compose?test=2", {"blueprint_name": BP["name"],
                                                         "compose_type": "qcow2"})).json()["build_id"]
    await _check_all(c, fresh)   # fills the caches

    cid = await _start(c, jobs, fresh)
    bodies = await _check_all(c, fresh)
    assert _where(bodies, cid) == {"queue:new": "WAITING", "status/*:uuids": "WAITING"}

    token = await _run(jobs, fresh, cid)
    bodies = await _check_all(c, fresh)
    assert _where(bodies, cid) == {"queue:run": "RUNNING", "status/*:uuids": "RUNNING"}

    await jobs.finish(token, {"success": True, "target_results": [
        {"name": "org.osbuild.aws", "options": {"ami": "ami-1", "region": "eu-central-1"}}]})
    for _ in range(2):   # once rendered, once from the entry cache
        bodies = await _check_all(c, fresh)
        assert _where(bodies, cid) == {"finished:finished": "FINISHED", "status/*:uuids": "FINISHED",
                                       "status/*?status=FINISHED:uuids": "FINISHED"}
    assert "ami\\u003c1\\u003e\\u0026co" in (await c.get("/api/v1/compose/finished")).text

    r = (await c.delete(f"/api/v1/compose/delete/{cid}")).json()
    assert r == {"uuids": [{"uuid": cid, "status": True}], "errors": []}
    bodies = await _check_all(c, fresh)
    assert _where(bodies, cid) == {}
    assert _where(bodies, done) == {"finished:finished": "FINISHED", "status/*:uuids": "FINISHED",
                                    "status/*?status=FINISHED:uuids": "FINISHED"}


async def test_failed_compose_moves_to_failed(daemon) -> None:
    c, jobs, fresh = daemon
    assert (await c.post_json("/api/v1/blueprints/new", BP)).status == 200
    await _check_all(c, fresh)
    cid = await _start(c, jobs, fresh)
    token = await _run(jobs, fresh, cid)
    await _check_all(c, fresh)
    await jobs.finish(token, {"success": False}, JobError(10, "osbuild build failed"))
    bodies = await _check_all(c, fresh)
    assert _where(bodies, cid) == {"failed:failed": "FAILED", "status/*:uuids": "FAILED"}
    r = (await c.delete(f"/api/v0/compose/delete/{cid}")).json()
    assert r["uuids"] == [{"uuid": cid, "status": True}]
    assert _where(await _check_all(c, fresh), cid) == {}


async def test_concurrent_readers_see_each_step(daemon) -> None:
    """Many clients poll status/* while a compose moves on: each sees a well-formed listing, and no
    client sees the compose go back to an earlier state."""
    c, jobs, fresh = daemon
    assert (await c.post_json("/api/v1/blueprints/new", BP)).status == 200
    for _ in range(3):
        await c.post_json("/api/v1/compose?test=2", {"blueprint_name": BP["name"], "compose_type": "qcow2"})
    stop = asyncio.Event()
    rank = {"WAITING": 0, "RUNNING": 1, "FINISHED": 2, None: 3}

    async def poll() -> int:
        last, polls = -1, 0
        while not stop.is_set():
            body = (await c.get("/api/v1/compose/status/*")).json()["uuids"]
            ids = [e["id"] for e in body]
            assert ids == sorted(set(ids)) and len(ids) >= 3
            mine = [e["queue_status"] for e in body if e["id"] == cid]
            now = rank[mine[0] if mine else None] if (mine or last >= 0) else -1
            assert now >= last
            last, polls = now, polls + 1
            await asyncio.sleep(0)
        return polls

    cid = await _start(c, jobs, fresh)
    pollers = [asyncio.create_task(poll()) for _ in range(10)]
    await asyncio.sleep(0.05)
    token = await _run(jobs, fresh, cid)
    await asyncio.sleep(0.05)
    await jobs.finish(token, {"success": True, "target_results": []})
    await asyncio.sleep(0.05)
    assert (await c.delete(f"/api/v1/compose/delete/{cid}")).status == 200
    await asyncio.sleep(0.05)
    stop.set()
    assert all(n > 0 for n in await asyncio.gather(*pollers))
    await _check_all(c, fresh)
