"""``GET /composes/{id}``, ``GET /composes/`` and ``DELETE /composes/{id}`` on the real daemon while a
compose goes through its jobs. Nothing builds in the daemon (``local_executor = false``): a worker —
a second connection to the daemon's job store, as a remote worker is one — takes each job in turn:
the depsolve and manifest jobs it runs with osbuildd's own job handlers (the Debian mirror, through
the run's shared cache), the build it reports as a worker does (progress while osbuild runs, the
upload progress while the targets run, then the result with the artifact in the compose's results).
Each step's status is read over the Cloud API and checked against the spec."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from osbuildd.compose.handlers import run_depsolve, run_manifest
from osbuildd.config import Config
from osbuildd.queue import Database, Dequeued, JobError, JobStore
from osbuildd.runner import Progress

from .cloud_daemon import CLOUD, SPEC, Daemon, cloud_daemon, conforms
from .tlsutil import TLSDaemon

DEBIAN_REPO = {"baseurl": "http://deb.debian.org/debian"}


def body(image_type: str, **image: Any) -> dict[str, Any]:
    return {"distribution": "debian-12", "customizations": {"packages": ["tmux"]},
            "image_request": {"architecture": "x86_64", "image_type": image_type, "repositories": [DEBIAN_REPO],
                              **image}}


def several(*requests: dict[str, Any]) -> dict[str, Any]:
    """A compose request of several images (each a ``body()``'s image_request)."""
    out = {k: v for k, v in requests[0].items() if k != "image_request"}
    return {**out, "image_requests": [r["image_request"] for r in requests]}


def conforms_status(answer: Any) -> None:
    """``conforms(answer, "ComposeStatus")``, an UploadStatus' ``options`` read as anyOf: the spec's
    oneOf lists AWSS3UploadStatus and OCIUploadStatus, which are the same schema."""
    components = yaml.safe_load(SPEC.read_text())["components"]
    options = components["schemas"]["UploadStatus"]["properties"]["options"]
    options["anyOf"] = options.pop("oneOf")
    validator = jsonschema.Draft4Validator({"$ref": "#/components/schemas/ComposeStatus", "components": components})
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(answer)]
    assert errors == [], errors[:5]


class Worker:
    """Takes the daemon's jobs over its own connection to the job store."""

    def __init__(self, d: Daemon, config: Config, jobs: JobStore) -> None:
        self.d, self.config, self.jobs = d, config, jobs

    async def take(self, job_type: str) -> Dequeued:
        dq = await self.jobs.dequeue([job_type], channels=None, timeout=5, owner="status-test-worker")
        assert dq is not None, f"no {job_type} job ready"
        return dq

    async def depsolve_and_manifest(self) -> None:
        dq = await self.take("depsolve")
        result, error = await run_depsolve(self.config, dq.job.args)
        await self.jobs.finish(dq.token, result, error)
        if error is not None:
            return
        dq = await self.take("manifest-id-only")
        result, error = await run_manifest(self.config, dq.job.args, dq.dynamic_args)
        await self.jobs.finish(dq.token, result, error)

    async def status(self, cid: str) -> dict[str, Any]:
        r = await self.d.cloud.get(f"{CLOUD}/composes/{cid}")
        assert r.status == 200, r.body
        answer = dict(r.json())
        conforms_status(answer)
        assert (answer["id"], answer["href"], answer["kind"]) == (cid, f"{CLOUD}/composes/{cid}", "ComposeStatus")
        return answer


@pytest.fixture
async def worker(repo_root: Path, tmp_path: Path, shared_state_dir: Path) -> AsyncIterator[Worker]:
    async with cloud_daemon(repo_root, tmp_path, shared_state_dir) as d:
        db = await Database.open(d.state / "osbuildd.db")
        try:
            yield Worker(d, Config.load(tmp_path / "osbuildd.toml"), JobStore(db))
        finally:
            await db.close()


async def post(d: Daemon, request: dict[str, Any]) -> str:
    r = await d.cloud.post(f"{CLOUD}/compose", request)
    assert r.status == 201, r.body
    return str(r.json()["id"])


async def test_pending_building_uploading_registering_success(worker: Worker) -> None:
    w, d = worker, worker.d
    cid = await post(d, body("aws", upload_targets=[{"type": "local", "upload_options": {}}],
                             upload_options={"region": "eu-west-1", "share_with_accounts": ["123456789012"]}))
    pending = await w.status(cid)
    assert pending["status"] == "pending" and pending["image_status"] == {"status": "pending"}, pending
    # the depsolve and manifest jobs ran: still pending, the build has not started
    await w.depsolve_and_manifest()
    assert (await w.status(cid))["image_status"] == {"status": "pending"}

    build = await w.jobs.dequeue_by_id(cid, owner="status-test-worker")
    first = await w.status(cid)
    assert first["status"] == "pending" and first["image_status"]["status"] == "building", first
    # osbuild's progress as the runner reports it: the status follows it live
    seen = []
    for done, sub_done in ((0, 1), (1, 3), (2, 7)):
        await w.jobs.set_progress(cid, Progress(done, 3, sub_done, 9, pipeline="os", stage="org.osbuild.apt").to_dict())
        image = (await w.status(cid))["image_status"]
        assert image["status"] == "building", image
        seen.append(image["progress"])
    assert seen == [{"done": 0, "total": 3, "subprogress": {"done": 1, "total": 9}},
                    {"done": 1, "total": 3, "subprogress": {"done": 3, "total": 9}},
                    {"done": 2, "total": 3, "subprogress": {"done": 7, "total": 9}}]
    assert "upload_status" not in image   # no target runs yet

    # the image is built, the targets run: uploading, the aws target listed as running
    size = 4096
    uploads = [{"name": "org.osbuild.aws", "sent": 1024, "size": size}]
    await w.jobs.set_progress(cid, {"done": 1, "total": 1, "percent": 100.0, "message": "uploading", "uploads": uploads})
    image = (await w.status(cid))["image_status"]
    assert image["status"] == "uploading", image
    assert image["upload_statuses"] == [{"type": "aws", "status": "running", "options": {"ami": "", "region": ""}}]
    assert image["upload_status"] == image["upload_statuses"][0]
    # every byte sent, the snapshot import and AMI registration run: registering
    uploads[0]["sent"] = size
    await w.jobs.set_progress(cid, {"done": 1, "total": 1, "percent": 100.0, "message": "uploading", "uploads": uploads})
    assert (await w.status(cid))["image_status"]["status"] == "registering"

    # the worker reports the result (the artifact in the compose's results, as the executor leaves it)
    filename = build.job.args["filename"]
    artifact = d.state / "results" / cid / filename
    artifact.parent.mkdir(parents=True, exist_ok=True)
    artifact.write_bytes(b"\0" * size)
    await w.jobs.finish(build.token, {
        "success": True, "osbuild_output": {"success": True, "log": {}, "metadata": {}}, "upload_status": "success",
        "target_results": [{"name": "org.osbuild.worker.server", "options": {"artifact_path": str(artifact)}},
                           {"name": "org.osbuild.aws", "options": {"ami": "ami-0123456789abcdef0", "region": "eu-west-1"}}],
        "pipeline_names": build.dynamic_args[0]["pipeline_names"], "arch": "x86_64", "host_os": "debian-12"})
    done = await w.status(cid)
    assert done["status"] == "success", done
    image = done["image_status"]
    assert image["status"] == "success" and "progress" not in image and "error" not in image, image
    # one upload status per target, in the build's order (upload_targets, then upload_options')
    assert image["upload_statuses"] == [
        {"type": "local", "status": "success", "options": {"artifact_path": str(artifact)}},
        {"type": "aws", "status": "success", "options": {"ami": "ami-0123456789abcdef0", "region": "eu-west-1"}}]
    assert image["upload_status"] == image["upload_statuses"][0]
    # the listing shows the same answer; the same answer every time (cached bytes, same content)
    r = await d.cloud.get(f"{CLOUD}/composes/")
    assert r.json() == [done] and (await w.status(cid)) == done
    # and it can be deleted now, with its results
    r = await d.cloud.request("DELETE", f"{CLOUD}/composes/{cid}")
    assert r.status == 200 and r.json()["kind"] == "ComposeDeleteStatus", r.body
    assert not artifact.exists()
    r = await d.cloud.get(f"{CLOUD}/composes/{cid}")
    assert (r.status, r.json()["id"]) == (404, "15")
    assert (await d.cloud.get(f"{CLOUD}/composes/")).json() == []


async def test_target_failure_is_the_images_error(worker: Worker) -> None:
    """One of two aws.s3 targets fails: the compose fails with upstream's 28 and the targets'
    errors; each target's status is its own (the failed one with empty options)."""
    w, d = worker, worker.d
    targets = [{"type": "aws.s3", "upload_options": {"region": "us-east-1"}},
               {"type": "aws.s3", "upload_options": {"region": "eu-west-1"}}]
    cid = await post(d, body("guest-image", upload_targets=targets))
    await w.depsolve_and_manifest()
    build = await w.jobs.dequeue_by_id(cid, owner="status-test-worker")
    target_error = {"id": 11, "reason": "uploading to s3://b/k failed: AccessDenied", "target": "org.osbuild.aws.s3"}
    await w.jobs.finish(build.token, {
        "success": True, "osbuild_output": {"success": True, "log": {}, "metadata": {}}, "upload_status": "failure",
        "target_results": [{"name": "org.osbuild.aws.s3", "options": {"url": "https://b.s3/k?sig"}},
                           {"name": "org.osbuild.aws.s3", "target_error": {"id": 11, "reason": target_error["reason"]}}],
        "job_error": {"id": 28, "reason": "at least one target failed", "details": [target_error]}})
    answer = await w.status(cid)
    assert answer["status"] == "failure" and answer["image_status"]["status"] == "failure", answer
    assert answer["image_status"]["error"] == {"id": 28, "reason": "at least one target failed", "details": [target_error]}
    assert answer["image_status"]["upload_statuses"] == [
        {"type": "aws.s3", "status": "success", "options": {"url": "https://b.s3/k?sig"}},
        {"type": "aws.s3", "status": "failure", "options": {"url": ""}}]


async def test_failure_before_the_build(worker: Worker) -> None:
    """The depsolve fails: the build job fails as its dependent, the status says why as upstream's
    chain, no upload status (no target ran); a canceled compose is a failure too."""
    w, d = worker, worker.d
    cid = await post(d, {**body("guest-image", upload_options={}),
                         "customizations": {"packages": ["no-such-package-osbuildd"]}})
    await w.depsolve_and_manifest()
    answer = await w.status(cid)
    image = answer["image_status"]
    assert answer["status"] == "failure" and image["status"] == "failure", answer
    assert set(image) == {"status", "error"}, image
    assert [image["error"]["id"], image["error"]["details"][0]["id"], image["error"]["details"][0]["details"][0]["id"]] \
        == [9, 5, 20], image
    # the manifest job fails (the worker says so): 9 <- the manifest job's own error
    cid = await post(d, body("guest-image", upload_options={}))
    dq = await w.take("depsolve")
    result, error = await run_depsolve(w.config, dq.job.args)
    await w.jobs.finish(dq.token, result, error)
    dq = await w.take("manifest-id-only")
    await w.jobs.finish(dq.token, {}, JobError(8, "manifest generation failed: no kernel"))
    error_json = (await w.status(cid))["image_status"]["error"]
    assert error_json == {"id": 9, "reason": "Manifest dependency failed",
                          "details": [{"id": 8, "reason": "manifest generation failed: no kernel"}]}
    # canceled (through Weldr: the Cloud API has no cancel) while its depsolve waits
    cid = await post(d, body("guest-image", upload_options={}))
    r = await d.weldr.request("DELETE", f"/api/v1/compose/cancel/{cid}")
    assert r.status == 200, r.body
    answer = await w.status(cid)
    assert (answer["status"], answer["image_status"]["status"]) == ("failure", "failure"), answer


async def test_several_images_status_and_delete(worker: Worker) -> None:
    """image_statuses one per image; pending until every image settled; failure when one failed;
    deleted whole."""
    w, d = worker, worker.d
    cid = await post(d, several(body("guest-image", upload_options={}), body("vsphere", upload_options={})))
    answer = await w.status(cid)
    assert [i["status"] for i in answer["image_statuses"]] == ["pending", "pending"]
    # the first image's build runs, the second's depsolve fails
    await w.depsolve_and_manifest()
    await w.jobs.dequeue_by_id(cid, owner="status-test-worker")
    dq = await w.take("depsolve")
    await w.jobs.finish(dq.token, {"error": "nope"}, JobError(20, "package foo: not found"))
    answer = await w.status(cid)
    assert [i["status"] for i in answer["image_statuses"]] == ["building", "failure"], answer
    assert answer["status"] == "failure" and answer["image_status"] == answer["image_statuses"][0]
    # one image still runs: not deleted, neither image
    r = await d.cloud.request("DELETE", f"{CLOUD}/composes/{cid}")
    assert (r.status, r.json()["id"]) == (400, "31"), r.body
    assert len((await w.status(cid))["image_statuses"]) == 2


async def test_listing_per_tenant_sorted_by_id(jwt_cloud: TLSDaemon) -> None:
    """Each tenant lists its own composes only, sorted by id as upstream sorts them; a compose of
    several images is one entry."""
    ids: dict[str, list[str]] = {"000001": [], "000002": []}
    sessions = {t: jwt_cloud.client(headers={"Authorization": f"Bearer {jwt_cloud.token(tenant=t)}"}) for t in ids}
    try:
        for tenant, session in sessions.items():
            for req in (body("guest-image", upload_options={}), body("vsphere", upload_options={}),
                        several(body("guest-image", upload_options={}), body("guest-image", upload_options={}))):
                async with session.post(f"{jwt_cloud.base}/compose", json=req) as r:
                    assert r.status == 201, await r.text()
                    ids[tenant].append((await r.json())["id"])
        for tenant, session in sessions.items():
            async with session.get(f"{jwt_cloud.base}/composes/") as r:
                assert r.status == 200
                items = await r.json()
            assert [c["id"] for c in items] == sorted(ids[tenant]), (tenant, items)
            for c in items:
                conforms(c, "ComposeStatus")
            assert [len(c.get("image_statuses", [c])) for c in items if c["id"] == ids[tenant][2]] == [2]
    finally:
        for s in sessions.values():
            await s.close()
