"""compose/info/<id> and compose/status/<id> answer settled composes from caches (the compose service's
get() cache, the rendered info body, the listing snapshot): at every step of a compose's life, and after
changes made behind the daemon's back through another database connection, each answer must be what
rendering the compose afresh gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from osbuildd.api.weldr.composeview import entry
from osbuildd.api.weldr.util import dumps
from osbuildd.compose import ComposeService

from .realdaemon import daemon_and_worker

BP = {"name": "single-cache", "version": "1.0.0", "packages": [{"name": "curl"}]}


@pytest.fixture
async def daemon(tmp_path: Path, shared_state_dir: Path):
    async with daemon_and_worker(tmp_path, shared_state_dir) as parts:
        yield parts


async def _status_is_fresh(c, fresh: ComposeService, cid: str) -> str:
    """status/<id> in v0 and v1, twice each (rendered, then cached), equals a fresh rendering; returns
    the compose's v1 queue_status."""
    compose = await ComposeService(fresh.config, fresh.db, fresh.jobs).get(cid)   # no cache of ours: read from the database
    for v in (0, 1):
        want = dumps({"uuids": [entry(compose, v)]})
        for _ in range(2):
            r = await c.get(f"/api/v{v}/compose/status/{cid}")
            assert r.status == 200 and r.text == want, (v, r.text)
    return (await c.get(f"/api/v1/compose/status/{cid}")).json()["uuids"][0]["queue_status"]


async def _info(c, cid: str) -> dict:
    """compose/info in v0 and v1, twice each: the cached body is byte for byte the rendered one."""
    bodies = {}
    for v in (0, 1):
        first = await c.get(f"/api/v{v}/compose/info/{cid}")
        assert first.status == 200, first.text
        again = await c.get(f"/api/v{v}/compose/info/{cid}")
        assert again.status == 200 and again.text == first.text
        bodies[v] = first.json()
    assert bodies[0]["id"] == bodies[1]["id"] == cid
    return bodies[1]


async def _gone(c, cid: str) -> None:
    for v in (0, 1):
        r = await c.get(f"/api/v{v}/compose/info/{cid}")
        assert r.status == 400 and r.json()["errors"][0]["id"] == "UnknownUUID", r.text
        assert (await c.get(f"/api/v{v}/compose/status/{cid}")).json() == {"uuids": []}


async def test_info_and_status_at_every_step(daemon) -> None:
    c, jobs, fresh = daemon
    assert (await c.post_json("/api/v1/blueprints/new", BP)).status == 200
    r = await c.post_json("/api/v1/compose", {"blueprint_name": BP["name"], "compose_type": "qcow2"})
    assert r.status == 200, r.text
    cid = r.json()["build_id"]
    assert await _status_is_fresh(c, fresh, cid) == "WAITING"
    assert (await _info(c, cid))["queue_status"] == "WAITING"

    dq = await jobs.dequeue_by_id(cid, owner="test-worker")   # the worker takes it
    assert await _status_is_fresh(c, fresh, cid) == "RUNNING"
    assert (await _info(c, cid))["queue_status"] == "RUNNING"

    await jobs.finish(dq.token, {"success": True, "target_results": []})
    assert await _status_is_fresh(c, fresh, cid) == "FINISHED"
    info = await _info(c, cid)
    assert info["queue_status"] == "FINISHED" and info["deps"]["packages"]
    assert "curl" in [p["name"] for p in info["deps"]["packages"]]

    # deleted through the API: neither route answers from a cache any more
    assert (await c.delete(f"/api/v1/compose/delete/{cid}")).json()["uuids"] == [{"uuid": cid, "status": True}]
    await _gone(c, cid)


async def test_changes_behind_the_daemons_back(daemon) -> None:
    c, jobs, fresh = daemon
    assert (await c.post_json("/api/v1/blueprints/new", BP)).status == 200
    ids = {}
    for test, want in (("2", "FINISHED"), ("1", "FAILED")):
        r = await c.post_json(f"/api/v1/compose?test={test}", {"blueprint_name": BP["name"], "compose_type": "qcow2"})
        assert r.status == 200, r.text
        ids[want] = r.json()["build_id"]
    for want, cid in ids.items():
        assert await _status_is_fresh(c, fresh, cid) == want
        assert (await _info(c, cid))["queue_status"] == want
    assert (await c.get("/api/v1/compose/failed")).json()["failed"][0]["id"] == ids["FAILED"]

    await fresh.delete(ids["FAILED"])   # another connection deletes it: the daemon's caches must see it
    await _gone(c, ids["FAILED"])
    assert (await c.get("/api/v1/compose/failed")).json() == {"failed": []}
    assert await _status_is_fresh(c, fresh, ids["FINISHED"]) == "FINISHED"   # the other one stays
    assert (await _info(c, ids["FINISHED"]))["queue_status"] == "FINISHED"
