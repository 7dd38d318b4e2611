"""The worker API's operations over real TLS + mTLS (``osbuildd serve``, gen-certs certificates), as
upstream's worker sees them: the recorded vectors (tests/data/worker/cases.json), the meta routes and
the error table, worker registration and heartbeats, taking jobs with their arguments, heartbeats and
results by token, artifact uploads, and each refusal with upstream's id. Jobs are put into the queue
through a second connection to the daemon's job store (``side_store``), or through Weldr."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import yaml
from yarl import URL

from osbuildd.queue import JobStatus, JobStore

from .wdaemon import BASE, CLOUD, WorkerDaemon, error_of, mtls_worker, worker_daemon

DATA = Path(__file__).resolve().parents[1] / "data" / "worker"
SPEC = Path(__file__).resolve().parents[2] / "osbuildd" / "api" / "worker" / "worker.openapi.yml"
MADE_UP = "00000000-0000-4000-8000-00000000beef"


def subset(expected: Any, actual: Any) -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), actual
        for k, v in expected.items():
            assert k in actual, (k, actual)
            subset(v, actual[k])
    else:
        assert expected == actual, (expected, actual)


async def test_vectors(wd: WorkerDaemon) -> None:
    cases = json.loads((DATA / "cases.json").read_text())
    assert len(cases) == 6
    c = wd.client()
    try:
        for case in cases:
            r = await c.request(case["method"], case["path"], case["body"], headers=case["headers"])
            assert r.status == case["status"], (case, r.body)
            if r.status == 204:
                # HTTP allows no body in a 204: aiohttp drops upstream's ObjectReference, as Go's net/http does
                assert r.body == b""
                continue
            subset(case["expected_subset"], r.json())
            if case["path"].endswith("/workers"):
                assert r.json()["id"] == r.json()["worker_id"] and uuid.UUID(r.json()["id"])
    finally:
        await c.close()


async def test_meta_routes_and_error_table(wd: WorkerDaemon) -> None:
    c = wd.client()
    try:
        r = await c.request("GET", f"{BASE}/openapi")
        assert r.status == 200 and r.headers["Content-Type"].startswith("application/json")
        assert r.json() == yaml.safe_load(SPEC.read_text())
        r = await c.request("GET", f"{BASE}/errors/6")
        assert r.status == 200
        assert {k: v for k, v in r.json().items() if k != "operation_id"} == {
            "href": f"{BASE}/errors/6", "id": "6", "kind": "Error", "code": "IMAGE-BUILDER-WORKER-6",
            "reason": "Job is not running", "message": "Job is not running"}
        error_of(await c.request("GET", f"{BASE}/errors/4242"), 404, 14)
        error_of(await c.request("GET", f"{BASE}/errors/six"), 400, 9)
        error_of(await c.request("GET", f"{BASE}/nothing/here"), 404, 11)
        error_of(await c.request("DELETE", f"{BASE}/jobs"), 405, 12)
        for method, path in (("POST", "/jobs"), ("PATCH", f"/jobs/{MADE_UP}"), ("POST", "/workers")):
            error_of(await c.request(method, BASE + path, data="{}", headers={"Content-Type": "text/plain"}), 415, 3)
            error_of(await c.request(method, BASE + path, data="{}",
                                     headers={"Content-Type": "application/json; charset=utf-8"}), 415, 3)
            error_of(await c.request(method, BASE + path, data="{nope",
                                     headers={"Content-Type": "application/json"}), 400, 10)
        # bodies the spec refuses: 10 with the field named
        body = error_of(await c.request("POST", f"{BASE}/jobs", {"types": ["osbuild"]}), 400, 10)
        assert "arch" in body["details"]
        error_of(await c.request("POST", f"{BASE}/workers", {"arch": 7}), 400, 10)
        error_of(await c.request("PATCH", f"{BASE}/jobs/{MADE_UP}", {"status": "done"}), 400, 10)
    finally:
        await c.close()


async def test_workers_register_and_status(wd: WorkerDaemon) -> None:
    c = wd.client()
    try:
        r = await c.request("POST", f"{BASE}/workers", {"arch": "aarch64"})
        assert r.status == 201
        body = r.json()
        assert body["href"] == f"{BASE}/workers" and body["kind"] == "WorkerID" and body["id"] == body["worker_id"]
        r = await c.request("POST", f"{BASE}/workers/{body['worker_id']}/status")
        assert (r.status, r.body) == (200, b"")
        error_of(await c.request("POST", f"{BASE}/workers/not-a-uuid/status"), 400, 17)
        error_of(await c.request("POST", f"{BASE}/workers/{MADE_UP}/status"), 400, 18)
        error_of(await c.take(["depsolve"], worker_id="worker-7"), 400, 17)
    finally:
        await c.close()
    async with wd.side_store() as jobs:
        rows = await jobs.db.conn.execute_fetchall("SELECT id, arch, channel FROM workers")
    assert [tuple(r) for r in rows] == [(body["worker_id"], "aarch64", "")]


async def test_take_heartbeat_partial_result(wd: WorkerDaemon) -> None:
    """A depsolve job end to end: its arguments as stored, the heartbeat, a partial, the result."""
    args = {"package_sets": {"os": []}, "distro": "debian-12", "arch": "x86_64"}
    async with wd.side_store() as jobs:
        job_id = await jobs.enqueue("depsolve", args)
    c = wd.client()
    try:
        wid = await c.register()
        r = await c.take(["depsolve", "osbuild"], worker_id=wid)
        assert r.status == 201, r.body
        body = r.json()
        token = body["location"].rsplit("/", 1)[1]
        assert body == {"href": f"{BASE}/jobs", "id": job_id, "kind": "RequestJob", "type": "depsolve",
                        "location": f"{BASE}/jobs/{token}", "artifact_location": f"{BASE}/jobs/{token}/artifacts/",
                        "args": args}
        assert (wd.uploads / token).is_dir()
        r = await c.request("GET", f"{BASE}/jobs/{token}")
        assert r.status == 200 and r.json() == {"href": f"{BASE}/jobs/{token}", "id": token, "kind": "JobStatus",
                                                "canceled": False}
        r = await c.request("PATCH", f"{BASE}/jobs/{token}", {"partial": {"progress": {"done": 1, "total": 3}}})
        assert r.status == 200 and r.json() == {"href": f"{BASE}/jobs/{token}", "id": token,
                                                "kind": "UpdateJobResponse"}
        async with wd.side_store() as jobs:
            job = await jobs.get(job_id)
            assert (job.status, job.owner, job.progress) == (JobStatus.RUNNING, wid, {"done": 1, "total": 3})
        result = {"packages": {"os": []}, "repos": {}}
        r = await c.request("PATCH", f"{BASE}/jobs/{token}", {"result": result})
        assert r.status == 200, r.body
        async with wd.side_store() as jobs:
            job = await jobs.get(job_id)
        assert (job.status, job.result, job.error) == (JobStatus.FINISHED, result, None)
        assert not (wd.uploads / token).exists()
        # settled: no second result, no partial, no upload
        error_of(await c.request("PATCH", f"{BASE}/jobs/{token}", {"result": result}), 400, 6)
        error_of(await c.request("PATCH", f"{BASE}/jobs/{token}", {"partial": {}}), 400, 6)
        error_of(await c.request("PUT", f"{BASE}/jobs/{token}/artifacts/x", data=b"x"), 400, 6)
        r = await c.request("GET", f"{BASE}/jobs/{token}")
        assert r.status == 200 and r.json()["canceled"] is False
    finally:
        await c.close()


async def _two_running(wd: WorkerDaemon, jobs: JobStore, c: Any) -> list[tuple[str, str]]:
    ids = [await jobs.enqueue("depsolve", {"n": i}) for i in range(2)]
    out = []
    for _ in ids:
        r = await c.take(["depsolve"])
        assert r.status == 201, r.body
        out.append((r.json()["id"], r.json()["location"].rsplit("/", 1)[1]))
    assert sorted(i for i, _ in out) == sorted(ids)
    return out


async def test_tokens_are_per_job(wd: WorkerDaemon) -> None:
    """A made-up token reaches no job; one job's token acts on that job only."""
    c = wd.client()
    try:
        async with wd.side_store() as jobs:
            (a_id, a_tok), (b_id, b_tok) = await _two_running(wd, jobs, c)
            before = await jobs.get(a_id)
        error_of(await c.request("GET", f"{BASE}/jobs/{MADE_UP}"), 404, 5)
        error_of(await c.request("PATCH", f"{BASE}/jobs/{MADE_UP}", {"result": {}}), 404, 5)
        error_of(await c.request("PATCH", f"{BASE}/jobs/{MADE_UP}", {"partial": {"progress": {"done": 9}}}), 404, 5)
        error_of(await c.request("PUT", f"{BASE}/jobs/{MADE_UP}/artifacts/disk.img", data=b"x"), 404, 5)
        error_of(await c.request("PATCH", f"{BASE}/jobs/nope", {"result": {}}), 400, 7)
        error_of(await c.request("PUT", f"{BASE}/jobs/nope/artifacts/disk.img", data=b"x"), 400, 7)
        assert (await c.request("PUT", f"{BASE}/jobs/{b_tok}/artifacts/disk.img", data=b"bbb")).status == 200
        assert (await c.request("PATCH", f"{BASE}/jobs/{b_tok}", {"partial": {"progress": {"done": 2}}})).status == 200
        assert (await c.request("PATCH", f"{BASE}/jobs/{b_tok}", {"result": {"ok": True}})).status == 200
        async with wd.side_store() as jobs:
            a, b = await jobs.get(a_id), await jobs.get(b_id)
        assert (b.status, b.result) == (JobStatus.FINISHED, {"ok": True})
        assert (a.status, a.result, a.progress, a.token, a.heartbeat) == (
            JobStatus.RUNNING, None, None, a_tok, before.heartbeat)
        assert list((wd.uploads / a_tok).iterdir()) == []
        assert not list((wd.results_dir).glob(f"{MADE_UP}*"))
    finally:
        await c.close()


async def test_canceled_job(wd: WorkerDaemon) -> None:
    c = wd.client()
    try:
        async with wd.side_store() as jobs:
            job_id = await jobs.enqueue("depsolve", {})
            r = await c.take(["depsolve"])
            token = r.json()["location"].rsplit("/", 1)[1]
        assert (await c.request("PUT", f"{BASE}/jobs/{token}/artifacts/disk.img", data=b"x")).status == 200
        async with wd.side_store() as jobs:
            await jobs.cancel(job_id)
        r = await c.request("GET", f"{BASE}/jobs/{token}")
        assert r.status == 200 and r.json()["canceled"] is True
        assert not (wd.uploads / token).exists()   # its uploads go with it
        error_of(await c.request("PATCH", f"{BASE}/jobs/{token}", {"result": {"packages": {}}}), 400, 6)
        error_of(await c.request("PATCH", f"{BASE}/jobs/{token}", {"partial": {"progress": {"done": 1}}}), 400, 6)
        error_of(await c.request("PUT", f"{BASE}/jobs/{token}/artifacts/disk.img", data=b"x"), 400, 6)
        async with wd.side_store() as jobs:
            job = await jobs.get(job_id)
        assert (job.status, job.result, job.progress) == (JobStatus.CANCELED, None, None)
    finally:
        await c.close()


async def test_artifact_names(wd: WorkerDaemon) -> None:
    c = wd.client()
    try:
        async with wd.side_store() as jobs:
            await jobs.enqueue("depsolve", {})
        token = (await c.take(["depsolve"])).json()["location"].rsplit("/", 1)[1]
        where = f"{c.url}{BASE}/jobs/{token}/artifacts/"
        for raw in ("..", "%2E%2E", ".", "a%2Fb", "..%2F..%2Fosbuildd.db", "a%00b", "x" * 256, ".hidden"):
            async with c.session.put(URL(where + raw, encoded=True), data=b"evil") as resp:
                assert resp.status == 400, (raw, resp.status)
                body = await resp.json()
            assert body["id"] == "10", (raw, body)
        assert list((wd.uploads / token).iterdir()) == []
        data = bytes(range(256)) * 4096 * 3    # 3 MiB
        r = await c.request("PUT", f"{BASE}/jobs/{token}/artifacts/disk.qcow2", data=data)
        assert (r.status, r.body) == (200, b"")
        path = wd.uploads / token / "disk.qcow2"
        assert path.read_bytes() == data and path.stat().st_mode & 0o777 == 0o600
        assert sorted(p.name for p in path.parent.iterdir()) == ["disk.qcow2"]
    finally:
        await c.close()


async def test_artifacts_disabled(tmp_path: Path, certs: Path) -> None:
    async with worker_daemon(tmp_path, certs, mtls_worker(certs, enable_artifacts=False)) as wd:
        c = wd.client()
        try:
            async with wd.side_store() as jobs:
                await jobs.enqueue("depsolve", {})
            token = (await c.take(["depsolve"])).json()["location"].rsplit("/", 1)[1]
            r = await c.request("PUT", f"{BASE}/jobs/{token}/artifacts/disk.img", data=b"abc")
            assert (r.status, r.body) == (400, b"")
            assert list((wd.uploads / token).iterdir()) == []
        finally:
            await c.close()


async def test_long_poll_wakes_on_enqueue_and_leaves_nothing_taken_on_disconnect(tmp_path: Path, certs: Path) -> None:
    """With request_job_timeout = 0 POST /jobs waits until a job comes (an enqueue in the daemon wakes
    it); a worker that went away while waiting takes nothing: the next worker gets the job."""
    async with worker_daemon(tmp_path, certs, mtls_worker(certs)) as wd:
        gone, waiting = wd.client(), wd.client()
        try:
            # the first worker gives up after half a second: its request is dropped
            quitter = asyncio.create_task(gone.take(["depsolve"]))
            await asyncio.sleep(0.5)
            quitter.cancel()
            await asyncio.gather(quitter, return_exceptions=True)
            await gone.close()
            await asyncio.sleep(1.5)   # the daemon notices the closed connection (it checks each second)
            taker = asyncio.create_task(waiting.take(["depsolve"]))
            await asyncio.sleep(0.5)
            assert not taker.done()
            # a Cloud compose: its depsolve job is enqueued pending (Weldr's runs in the request)
            r = await wd.cloud.post(f"{CLOUD}/compose", {
                "distribution": "debian-12", "customizations": {"packages": ["tmux"]},
                "image_request": {"architecture": "x86_64", "image_type": "guest-image",
                                  "repositories": [{"baseurl": "http://deb.debian.org/debian"}],
                                  "upload_options": {}}})
            assert r.status == 201, r.body
            async with asyncio.timeout(30):
                answer = await taker
            assert answer.status == 201 and answer.json()["type"] == "depsolve", answer.body
            async with wd.side_store() as jobs:
                job = await jobs.get(answer.json()["id"])
                assert job.status == JobStatus.RUNNING and job.token == answer.json()["location"].rsplit("/", 1)[1]
                assert job.retries == 0
        finally:
            await waiting.close()
        assert "job handed out but not delivered" not in wd.log_text()


async def test_daemon_stop_answers_waiting_workers(tmp_path: Path, certs: Path) -> None:
    """A long-poll waiting forever (request_job_timeout = 0) is answered 204 when the daemon stops, so
    the worker asks again (elsewhere, or once the daemon is back) instead of holding up the stop."""
    async with worker_daemon(tmp_path, certs, mtls_worker(certs)) as wd:
        c = wd.client()
        waiting = asyncio.create_task(c.take(["depsolve"]))
        await asyncio.sleep(0.5)
        assert not waiting.done()
    try:
        r = await waiting
        assert (r.status, r.body) == (204, b"")
    finally:
        await c.close()
