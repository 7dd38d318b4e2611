"""A compose built by a remote worker, the worker being this test talking the worker API over mTLS:
a Cloud API compose (local upload) on a daemon that builds nothing itself (``local_executor =
false``; it still runs the manifest job). The test takes the depsolve job and runs osbuildd's own
depsolve handler on it (the Debian mirror, through the run's shared cache), the daemon makes the
manifest, the test takes the build: its arguments as a remote worker gets them, partial updates whose
progress shows in the Cloud and Weldr statuses and whose log text lands in the compose's log (a
resent offset ignored), the artifact PUT, the result. Then the compose is finished in both APIs and
its image downloads through both. Also: a job whose token nobody polls is requeued (the job store's
heartbeat watcher), a polled one is not, and silent workers are forgotten."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from osbuildd.compose.handlers import run_depsolve
from osbuildd.config import Config
from osbuildd.queue import JobStatus

from .wdaemon import BASE, CLOUD, WorkerClient, WorkerDaemon, error_of, mtls_worker, worker_daemon

COMPOSE = {"distribution": "debian-12", "customizations": {"packages": ["tmux"]},
           "image_request": {"architecture": "x86_64", "image_type": "guest-image",
                             "repositories": [{"baseurl": "http://deb.debian.org/debian"}], "upload_options": {}}}


def token_of(answer: dict[str, Any]) -> str:
    return str(answer["location"].rsplit("/", 1)[1])


async def _depsolve(wd: WorkerDaemon, c: WorkerClient, wid: str) -> None:
    r = await c.take(["depsolve"], worker_id=wid)
    assert r.status == 201, r.body
    job = r.json()
    result, error = await run_depsolve(Config.load(wd.config), job["args"])
    assert error is None, error
    r = await c.request("PATCH", f"{BASE}/jobs/{token_of(job)}", {"result": result})
    assert r.status == 200, r.body


async def _statuses(wd: WorkerDaemon, cid: str) -> tuple[dict[str, Any], dict[str, Any]]:
    r = await wd.cloud.get(f"{CLOUD}/composes/{cid}")
    assert r.status == 200, r.body
    w = await wd.weldr.get(f"/api/v1/compose/status/{cid}")
    assert w.status == 200, w.body
    return r.json(), w.json()["uuids"][0]


async def _partials(wd: WorkerDaemon, c: WorkerClient, cid: str, token: str) -> None:
    progress = {"done": 1, "total": 4, "subprogress": {"done": 2, "total": 5}, "stage": "org.osbuild.apt"}
    for partial in ({"progress": progress, "log": {"offset": 0, "text": "line one\n"},
                     "stage_logs": {"st-1": {"offset": 0, "text": "stage text\n"}}},
                    {"log": {"offset": 0, "text": "line one\n"}},        # a resend: ignored
                    {"log": {"offset": 100, "text": "a gap\n"}},         # a gap: ignored
                    {"log": {"offset": 9, "text": "line two\n"}}):
        r = await c.request("PATCH", f"{BASE}/jobs/{token}", {"partial": partial})
        assert r.status == 200, r.body
    cloud, weldr = await _statuses(wd, cid)
    assert (cloud["status"], cloud["image_status"]["status"]) == ("pending", "building"), cloud
    assert cloud["image_status"]["progress"] == {"done": 1, "total": 4, "subprogress": {"done": 2, "total": 5}}
    assert weldr["queue_status"] == "RUNNING" and weldr["progress"] == progress, weldr
    logs = wd.results_dir / cid / "logs"
    assert (logs / "osbuild.log").read_text() == "line one\nline two\n"
    assert (logs / "stages" / "st-1.log").read_text() == "stage text\n"
    body = error_of(await c.request("PATCH", f"{BASE}/jobs/{token}", {"partial": {"progress": [1]}}), 400, 10)
    assert "progress" in body["details"]


async def _download(wd: WorkerDaemon, path: str, client: Any) -> bytes:
    r = await client.get(path)
    assert r.status == 200, (path, r.status, r.body[:300])
    return bytes(r.body)


async def test_compose_built_by_a_remote_worker(tmp_path: Path, certs: Path, shared_state_dir: Path) -> None:
    async with worker_daemon(tmp_path, certs, mtls_worker(certs, request_job_timeout=120),
                             shared_state_dir=shared_state_dir) as wd:
        c = wd.client()
        try:
            r = await wd.cloud.post(f"{CLOUD}/compose", COMPOSE)
            assert r.status == 201, r.body
            cid = r.json()["id"]
            wid = await c.register()
            await _depsolve(wd, c, wid)
            r = await c.take(["osbuild"], worker_id=wid)     # waits for the daemon's manifest job
            assert r.status == 201, r.body
            job = r.json()
            token, args = token_of(job), job["args"]
            assert job["id"] == cid and job["type"] == "osbuild"
            assert [t["name"] for t in args["targets"]] == ["org.osbuild.worker.server"]
            assert "sealed" not in args and args["pipeline_names"] == job["dynamic_args"][0]["pipeline_names"]
            assert job["dynamic_args"][0]["manifest"]["version"] == "2"
            filename = args["targets"][0]["osbuild_artifact"]["export_filename"]
            assert filename == args["filename"]
            await _partials(wd, c, cid, token)
            image = os.urandom(3 * 1024 * 1024 + 17)
            r = await c.request("PUT", f"{BASE}/jobs/{token}/artifacts/{filename}", data=image)
            assert r.status == 200, r.body
            osbuild_output = {"type": "result", "success": True,
                              "log": {"os": [{"id": "st-1", "type": "org.osbuild.apt", "output": "x\n"}]}}
            result = {"success": True, "osbuild_output": osbuild_output, "arch": "x86_64", "host_os": "debian-12",
                      "pipeline_names": args["pipeline_names"], "upload_status": "success",
                      "target_results": [{"name": "org.osbuild.worker.server",
                                          "options": {"artifact_relative_path": filename}}]}
            r = await c.request("PATCH", f"{BASE}/jobs/{token}", {"result": result})
            assert r.status == 200, r.body
            cloud, weldr = await _statuses(wd, cid)
            assert cloud["status"] == "success" and weldr["queue_status"] == "FINISHED", (cloud, weldr)
            assert await _download(wd, f"/api/v1/compose/image/{cid}", wd.weldr) == image
            assert await _download(wd, f"{CLOUD}/composes/{cid}/download", wd.cloud) == image
            results = wd.results_dir / cid
            stored = json.loads((results / "result.json").read_text())
            assert stored["target_results"] == [{"name": "org.osbuild.worker.server", "options": {
                "artifact_relative_path": filename, "artifact_path": str(results / filename)}}]
            assert json.loads((results / "manifest.json").read_text()) == job["dynamic_args"][0]["manifest"]
            assert (results / "logs" / "osbuild.log").read_text() == "line one\nline two\n"   # streamed: kept
            assert (results / filename).stat().st_mode & 0o777 == 0o600
            assert not (wd.uploads / token).exists()
            error_of(await c.request("PATCH", f"{BASE}/jobs/{token}", {"result": result}), 400, 6)
        finally:
            await c.close()


async def test_missing_heartbeat_requeues_and_silent_workers_go(tmp_path: Path, certs: Path) -> None:
    section = mtls_worker(certs, request_job_timeout=5, job_timeout=2, job_watch_interval=1,
                          worker_heartbeat_timeout=2, worker_watch_interval=1)
    async with worker_daemon(tmp_path, certs, section) as wd:
        c = wd.client()
        try:
            async with wd.side_store() as jobs:
                silent_id = await jobs.enqueue("depsolve", {"n": 1})
                r = await c.take(["depsolve"])
                first = r.json()
                kept_id = await jobs.enqueue("depsolve", {"n": 2})
                kept = (await c.take(["depsolve"])).json()
                assert (first["id"], kept["id"]) == (silent_id, kept_id)
                wid = await c.register()
                # the kept job's worker polls its token; nobody polls the silent one's
                async with asyncio.timeout(60):
                    while (await jobs.get(silent_id)).status != JobStatus.PENDING:
                        r = await c.request("GET", f"{BASE}/jobs/{token_of(kept)}")
                        assert r.status == 200 and r.json()["canceled"] is False
                        await asyncio.sleep(0.5)
                silent, still = await jobs.get(silent_id), await jobs.get(kept_id)
                assert (silent.retries, silent.token, silent.owner) == (1, None, None)
                assert (still.status, still.token) == (JobStatus.RUNNING, token_of(kept))
            error_of(await c.request("GET", f"{BASE}/jobs/{token_of(first)}"), 404, 5)
            # the watcher removes the requeued token's upload directory, keeps the running one's
            uploads = wd.uploads
            for _ in range(120):
                if not (uploads / token_of(first)).exists():
                    break
                await asyncio.sleep(0.5)
            assert not (uploads / token_of(first)).exists() and (uploads / token_of(kept)).is_dir()
            again = (await c.take(["depsolve"])).json()
            assert again["id"] == silent_id and token_of(again) != token_of(first)
            # the worker never sent its status: it is dropped
            async with wd.side_store() as jobs:
                for _ in range(120):
                    if not await jobs.db.conn.execute_fetchall("SELECT id FROM workers WHERE id = ?", (wid,)):
                        break
                    await asyncio.sleep(0.5)
            error_of(await c.request("POST", f"{BASE}/workers/{wid}/status"), 400, 18)
        finally:
            await c.close()
