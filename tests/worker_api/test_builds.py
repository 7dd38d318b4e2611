"""Build jobs as a remote worker gets and settles them, on jobs put into the daemon's queue through a
second connection to its job store (a manifest job finished with a result, then an ``osbuild:x86_64``
job after it, as the compose service enqueues them): the arguments rewritten for the worker (sealed
credentials opened, ``org.osbuild.local`` replaced by ``org.osbuild.worker.server``, pipeline names
from the manifest), results without streamed logs (the log rebuilt from osbuild's output), a build
that says it succeeded without uploading its artifact, a failed build, and a job that outlives a
daemon restart (stale upload directories removed at start, the running job's kept), and ``[results] dir``
outside the state directory (uploads staged and results kept there)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from osbuildd import sealing
from osbuildd.queue import GraphJob, JobStatus, JobStore

from .wdaemon import BASE, WorkerDaemon, error_of, mtls_worker, worker_daemon

MANIFEST = {"version": "2", "pipelines": [{"name": "build"}, {"name": "os"}, {"name": "image"}]}
MANIFEST_RESULT = {"manifest": MANIFEST, "exports": ["image"], "checkpoints": [], "filename": "disk.qcow2",
                   "pipeline_names": {"build": ["build"], "payload": ["os", "image"]}}
AWS_OPTIONS = {"region": "eu-central-1", "accessKeyID": "AKIDEXAMPLE", "secretAccessKey": "s3cr3t-key",
               "bucket": "images"}


def target(name: str, options: dict[str, Any]) -> dict[str, Any]:
    return {"uuid": str(uuid.uuid4()), "name": name, "image_name": "disk.qcow2", "created": "2026-01-01T00:00:00Z",
            "status": "WAITING", "options": options,
            "osbuild_artifact": {"export_filename": "disk.qcow2", "export_name": "image"}}


async def enqueue_build(wd: WorkerDaemon, jobs: JobStore, targets: list[dict[str, Any]]) -> str:
    """A manifest job finished with MANIFEST_RESULT and a pending build after it (one transaction: the
    daemon, which runs manifest jobs itself, never sees the manifest job pending)."""
    args = {"targets": targets, "pipeline_names": None, "image_boot_mode": "hybrid", "export": "image",
            "filename": "disk.qcow2"}
    sealing.seal_targets(args, sealing.Sealer.open(wd.state))
    manifest = GraphJob("manifest-id-only", {}, [], id=str(uuid.uuid4()), status="finished", result=MANIFEST_RESULT)
    build = GraphJob("osbuild:x86_64", args, [manifest.id])
    async with jobs.db.transaction() as conn:
        ids = await jobs.enqueue_graph(conn, [manifest, build])
    return ids[1]


def token_of(answer: dict[str, Any]) -> str:
    return str(answer["location"].rsplit("/", 1)[1])


OSBUILD_OUTPUT = {"type": "result", "success": True, "log": {
    "os": [{"id": "s1", "type": "org.osbuild.mkdir", "output": "made /boot\n"}],
    "image": [{"id": "s2", "type": "org.osbuild.qemu", "output": "converted"}]}}


async def test_build_args_and_results_without_partials(wd: WorkerDaemon) -> None:
    c = wd.client()
    try:
        async with wd.side_store() as jobs:
            stored = await enqueue_build(wd, jobs, [target("org.osbuild.aws", AWS_OPTIONS),
                                                    target("org.osbuild.local", {})])
            assert "s3cr3t-key" not in json.dumps((await jobs.get(stored)).args)
        r = await c.take(["osbuild"])
        assert r.status == 201, r.body
        job = r.json()
        args, token = job["args"], token_of(job)
        assert job["id"] == stored and job["type"] == "osbuild"
        assert [t["name"] for t in args["targets"]] == ["org.osbuild.aws", "org.osbuild.worker.server"]
        assert args["targets"][0]["options"] == AWS_OPTIONS and "sealed" not in args
        assert args["targets"][1]["options"] == {}
        assert args["targets"][1]["osbuild_artifact"] == {"export_filename": "disk.qcow2", "export_name": "image"}
        assert args["pipeline_names"] == MANIFEST_RESULT["pipeline_names"]
        # the manifest result also under upstream's ManifestJobByIDResult keys, for upstream workers
        dyn = job["dynamic_args"][0]
        assert {k: v for k, v in dyn.items() if k not in ("data", "info", "error")} == MANIFEST_RESULT
        assert dyn["data"] == MANIFEST_RESULT["manifest"] and dyn["error"] == ""
        assert dyn["info"]["pipeline_names"] == MANIFEST_RESULT["pipeline_names"]
        # the worker says it succeeded but never PUT the artifact: the composer fails the build
        result = {"success": True, "osbuild_output": OSBUILD_OUTPUT, "arch": "x86_64",
                  "target_results": [{"name": "org.osbuild.aws", "options": {"ami": "ami-1", "region": "eu-central-1"}},
                                     {"name": "org.osbuild.worker.server",
                                      "options": {"artifact_relative_path": "disk.qcow2"}}]}
        r = await c.request("PATCH", f"{BASE}/jobs/{token}", {"result": result})
        assert r.status == 200, r.body
        async with wd.side_store() as jobs:
            done = await jobs.get(stored)
        assert done.status == JobStatus.FINISHED and done.error is not None and done.error.id == 10
        assert "not uploaded" in done.error.reason
        results = wd.state / "results" / stored
        log = (results / "logs" / "osbuild.log").read_text()
        assert log.startswith("Pipeline os\nStage org.osbuild.mkdir (s1)\nmade /boot\nPipeline image\n"), log
        assert "converted\n" in log and "not uploaded" in log      # the failure block at the end
        assert json.loads((results / "manifest.json").read_text()) == MANIFEST
        assert json.loads((results / "result.json").read_text())["success"] is False
    finally:
        await c.close()


async def test_failed_build_and_successful_one(wd: WorkerDaemon) -> None:
    c = wd.client()
    try:
        async with wd.side_store() as jobs:
            failing = await enqueue_build(wd, jobs, [])
            passing = await enqueue_build(wd, jobs, [])
        first = (await c.take(["osbuild"])).json()
        second = (await c.take(["osbuild"])).json()
        assert (first["id"], second["id"]) == (failing, passing)
        # no target at all (a Weldr compose without upload): the worker gets a worker.server one
        assert [t["name"] for t in second["args"]["targets"]] == ["org.osbuild.worker.server"]
        err = {"id": 10, "reason": "osbuild build failed", "details": {"stage": "org.osbuild.apt"}}
        r = await c.request("PATCH", f"{BASE}/jobs/{token_of(first)}",
                            {"result": {"success": False, "job_error": err, "osbuild_output": {"success": False}}})
        assert r.status == 200, r.body
        r = await c.request("PUT", f"{BASE}/jobs/{token_of(second)}/artifacts/disk.qcow2", data=b"qcow2 bytes")
        assert r.status == 200, r.body
        result = {"success": True, "target_results": [{"name": "org.osbuild.worker.server",
                                                       "options": {"artifact_relative_path": "image/disk.qcow2"}}]}
        r = await c.request("PATCH", f"{BASE}/jobs/{token_of(second)}", {"result": result})
        assert r.status == 200, r.body
        async with wd.side_store() as jobs:
            f, p = await jobs.get(failing), await jobs.get(passing)
        assert f.error is not None and f.error.to_dict() == err
        assert "osbuild build failed" in (wd.state / "results" / failing / "logs" / "osbuild.log").read_text()
        assert p.error is None and p.status == JobStatus.FINISHED
        image = wd.state / "results" / passing / "disk.qcow2"
        assert image.read_bytes() == b"qcow2 bytes"
        assert p.result is not None and p.result["target_results"] == [{"name": "org.osbuild.worker.server", "options": {
            "artifact_relative_path": "image/disk.qcow2", "artifact_path": str(image)}}]
    finally:
        await c.close()


async def test_remote_job_outlives_a_restart(tmp_path: Path, certs: Path) -> None:
    section = mtls_worker(certs, request_job_timeout=1)
    async with worker_daemon(tmp_path, certs, section) as wd:
        c = wd.client()
        try:
            async with wd.side_store() as jobs:
                build = await enqueue_build(wd, jobs, [])
            job = (await c.take(["osbuild"])).json()
            r = await c.request("PUT", f"{BASE}/jobs/{token_of(job)}/artifacts/disk.qcow2", data=b"before")
            assert r.status == 200
        finally:
            await c.close()
    stale = wd.uploads / str(uuid.uuid4())
    stale.mkdir()
    (stale / "disk.qcow2").write_bytes(b"left by a job that is gone")
    # a state directory from before uploads were staged under the results root: the running job's
    # upload in the old place is taken over, a stale one there goes, and so does the old directory
    legacy = wd.state / "artifacts" / "tmp"
    legacy.mkdir(parents=True)
    (wd.uploads / token_of(job)).rename(legacy / token_of(job))
    (legacy / str(uuid.uuid4())).mkdir()
    async with worker_daemon(tmp_path, certs, section) as wd:
        assert not stale.exists() and not (wd.state / "artifacts").exists()
        kept = wd.uploads / token_of(job) / "disk.qcow2"
        assert kept.read_bytes() == b"before"
        assert sorted(p.name for p in wd.uploads.iterdir()) == [token_of(job)]
        c = wd.client()
        try:
            r = await c.request("GET", f"{BASE}/jobs/{token_of(job)}")
            assert r.status == 200 and r.json()["canceled"] is False
            result = {"success": True, "target_results": [{"name": "org.osbuild.worker.server",
                                                           "options": {"artifact_relative_path": "disk.qcow2"}}]}
            r = await c.request("PATCH", f"{BASE}/jobs/{token_of(job)}", {"result": result})
            assert r.status == 200, r.body
            error_of(await c.request("PATCH", f"{BASE}/jobs/{token_of(job)}", {"result": result}), 400, 6)
            async with wd.side_store() as jobs:
                done = await jobs.get(build)
            assert done.status == JobStatus.FINISHED and done.error is None
            assert (wd.state / "results" / build / "disk.qcow2").read_bytes() == b"before"
        finally:
            await c.close()


async def test_results_dir_elsewhere_stages_and_keeps_the_artifact_there(tmp_path: Path, certs: Path) -> None:
    """``[results] dir`` outside the state directory (a shared one, several daemons): the upload is
    staged under it (so the daemon that gets the result, maybe not the one that got the upload, finds
    it), and the artifact ends up in it; nothing of it in the state directory."""
    shared = tmp_path / "shared-results"
    async with worker_daemon(tmp_path, certs, mtls_worker(certs, request_job_timeout=1),
                             results={"dir": str(shared)}) as wd:
        assert wd.results_dir == shared
        c = wd.client()
        try:
            async with wd.side_store() as jobs:
                build = await enqueue_build(wd, jobs, [target("org.osbuild.local", {})])
            job = (await c.take(["osbuild"])).json()
            token = token_of(job)
            r = await c.request("PUT", f"{BASE}/jobs/{token}/artifacts/disk.qcow2", data=b"shared image")
            assert r.status == 200, r.body
            assert (shared / ".uploads" / token / "disk.qcow2").read_bytes() == b"shared image"
            result = {"success": True, "target_results": [{"name": "org.osbuild.worker.server",
                                                           "options": {"artifact_relative_path": "disk.qcow2"}}]}
            r = await c.request("PATCH", f"{BASE}/jobs/{token}", {"result": result})
            assert r.status == 200, r.body
            async with wd.side_store() as jobs:
                done = await jobs.get(build)
            assert done.status == JobStatus.FINISHED and done.error is None, done.error
            assert (shared / build / "disk.qcow2").read_bytes() == b"shared image"
            stored = json.loads((shared / build / "result.json").read_text())
            assert stored["target_results"][0]["options"]["artifact_path"] == str(shared / build / "disk.qcow2")
            assert list((shared / ".uploads").iterdir()) == []
            assert not (wd.state / "results" / build).exists() and not (wd.state / "artifacts").exists()
        finally:
            await c.close()
