"""Listing composes reads each compose with its jobs in one query: it must give exactly what the
per-compose reads give, for every state a compose can be in."""

from __future__ import annotations

import time
import uuid

import pytest

from osbuildd.compose import store
from osbuildd.executor import start_local
from osbuildd.queue import JobNotFound
from osbuildd.services import Services

from .helpers import embedded_config

COUNT = 2000
KINDS = ("waiting", "running", "finished", "failed", "canceled", "fake-finished", "fake-failed")


@pytest.fixture
async def services(tmp_path, backend):
    s = await Services.open(embedded_config(tmp_path / "state", backend))
    await start_local(s, start=False)   # nothing takes the jobs: they stay where we put them
    yield s
    await s.close()


def _spec(name: str, i: int) -> dict:
    return {"name": name, "epoch": 0, "version": f"1.{i}", "release": "", "arch": "amd64",
            "url": f"http://deb.example/{name}.deb", "checksum": "sha256:" + "0" * 64}


def _graph(kind: str, i: int) -> tuple[list[store.GraphJob], str, str | None, str | None]:
    """Jobs of one compose of ``kind`` (the build job last) and its build/depsolve/manifest ids."""
    ids = [str(uuid.uuid4()) for _ in range(3)]
    target = {"uuid": ids[0], "name": "org.osbuild.aws.s3", "image_name": f"img-{i}",
              "created": "2026-01-01T00:00:00Z", "options": {"bucket": "b"}}
    args = {"targets": [target], "pipeline_names": None, "filename": "disk.qcow2"}
    if kind.startswith("fake"):
        ok = kind == "fake-finished"
        err = None if ok else {"id": 10, "reason": "osbuild build failed"}
        build = store.GraphJob("osbuild:x86_64", {"targets": [], "pipeline_names": None}, [], id=ids[2],
                               status="finished", error=err,
                               result={"success": ok, "target_results": []})
        return [build], ids[2], None, None
    dep = store.GraphJob("depsolve", {"arch": "x86_64"}, [], id=ids[0], status="finished", result={
        "package_specs": {"build": [_spec("apt", i)], "os": [_spec(f"pkg{i}", i)]}})
    man = store.GraphJob("manifest-id-only", {}, [ids[0]], id=ids[1], status="finished",
                         result={"manifest": {"version": "2", "pipelines": [{"name": f"p{i}"}]}})
    build = store.GraphJob("osbuild:x86_64", args, [ids[1]], id=ids[2])
    if kind == "finished":
        build.status = "finished"
        build.result = {"success": True, "target_results": [{"name": "org.osbuild.aws.s3",
                                                             "options": {"url": f"s3://b/{i}"}}]}
    elif kind == "failed":
        build.status = "finished"
        build.error = {"id": 28, "reason": "upload failed", "details": ["x"]}
        build.result = {"success": False, "target_results": [{"name": "org.osbuild.aws.s3",
                                                              "target_error": {"id": 1, "reason": "no"}}]}
    return [dep, man, build], ids[2], ids[0], ids[1]


async def _fill(services) -> None:
    now = time.time()
    for i in range(COUNT):
        kind = KINDS[i % len(KINDS)]
        jobs, cid, dep, man = _graph(kind, i)
        channel = ("", "org-1", "org-2")[i % 3]
        await store.insert_graph(services.db, services.jobs, jobs, {
            "id": cid, "depsolve_job": dep, "manifest_job": man, "request": {"n": i},
            "blueprint_name": f"bp-{i % 50}", "blueprint_version": "0.0.1", "image_type": "qcow2",
            "distro": "debian-12", "arch": "x86_64", "origin": "weldr", "channel": channel,
            # equal creation times for some: the listing order then falls back to the id
            "created": now + i // 4, "size": 1 << 30, "image_filename": "disk.qcow2",
            "fake": int(kind.startswith("fake"))}, channel)
        if kind in ("running", "canceled"):
            async with services.db.transaction() as conn:
                await conn.execute(
                    "UPDATE jobs SET status = ?, started_at = ?, progress = ?, owner = 'local', token = ?"
                    " WHERE id = ?", ("running" if kind == "running" else "canceled", now,
                                      '{"percent": 42.0, "stage": "org.osbuild.apt"}', str(uuid.uuid4()), cid))


async def _one_by_one(services, where: str = "TRUE", params: tuple = ()) -> list[store.ComposeRows]:
    """The per-compose reads the joined query replaces: the compose row, then each job by id."""
    async def job(jid):
        try:
            return await services.jobs.get(jid) if jid else None
        except JobNotFound:
            return None
    out = []
    for row in await store.fetch_rows(services.db, where, params):
        out.append(store.ComposeRows(row, await services.jobs.get(row["id"]),
                                     await job(row["depsolve_job"]), await job(row["manifest_job"])))
    return out


async def _delete_job(services, job_id: str) -> None:
    """Remove a job row behind the compose's back (a store damaged or raced by a delete): foreign
    keys off (the composes row stays), no notification."""
    if services.db.backend == "postgresql":
        async with services.db.transaction() as conn:
            await conn.execute("SET LOCAL session_replication_role = replica")   # no FK triggers
            await _delete_job_rows(conn, job_id)
        return
    await services.db.writer.execute("PRAGMA foreign_keys=OFF")   # a no-op inside a transaction
    try:
        async with services.db.transaction() as conn:
            await _delete_job_rows(conn, job_id)
    finally:
        await services.db.writer.execute("PRAGMA foreign_keys=ON")


async def _delete_job_rows(conn, job_id: str) -> None:
    await conn.execute("DELETE FROM job_dependencies WHERE job_id = ? OR dependency_id = ?", (job_id, job_id))
    await conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))


async def test_listing_many_composes_equals_per_compose_reads(services):
    await _fill(services)
    # one compose whose depsolve job row is gone: its listing shows no packages, as a lookup would
    victim = (await store.fetch_rows(services.db, "depsolve_job IS NOT NULL"))[0]
    await _delete_job(services, victim["depsolve_job"])

    joined = await store.fetch_with_jobs(services.db)
    assert len(joined) == COUNT
    assert joined == await _one_by_one(services)

    listed = await services.compose.list()
    assert [c.id for c in listed] == [r.row["id"] for r in joined]
    assert listed == [await services.compose.get(c.id) for c in listed]
    states = {c.state for c in listed}
    assert states == {"waiting", "running", "finished", "failed", "canceled"}
    assert any(c.packages for c in listed) and any(c.manifest for c in listed)
    assert next(c for c in listed if c.id == victim["id"]).packages == []

    org1 = await services.compose.list("org-1")
    assert [c.id for c in org1] == [r.row["id"] for r in await _one_by_one(services, "channel = ?", ("org-1",))]
    assert org1 == [c for c in listed if c.channel == "org-1"]


async def test_listing_leaves_out_a_compose_whose_build_job_is_gone(services):
    jobs, cid, dep, man = _graph("finished", 0)
    await store.insert_graph(services.db, services.jobs, jobs, {
        "id": cid, "depsolve_job": dep, "manifest_job": man, "request": {}, "blueprint_name": "x",
        "image_type": "qcow2", "distro": "debian-12", "arch": "x86_64", "image_filename": "disk.qcow2"}, "")
    assert [c.id for c in await services.compose.list()] == [cid]
    await _delete_job(services, cid)
    assert await store.fetch_rows(services.db) != []   # the compose row itself is still there
    assert await services.compose.list() == []
