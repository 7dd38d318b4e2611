"""Issue 11 §2: a compose that fails after it started keeps its reason, and every reader reaches it.

For each failure path (depsolve, stage failure, stage timeout, cancel, daemon shutdown, upload) the
error id, reason, failing stage and its last lines must be in Weldr's ``compose/log``, in the ``logs``
tar (``logs/osbuild.log`` and ``logs/error.json``), in ``compose/info`` (extra ``error`` field) and in
what ``osbuildd build`` prints. Builds are replayed by fake osbuilds (no mirror, no root, seconds)."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web
from testdata import OSBUILD
from upload.conftest import serve
from weldr.conftest import WeldrClient, weldr_server

from osbuildd.api.weldr.app import build_app
from osbuildd.cli_build import report_failure
from osbuildd.compose import UploadTarget, failure, store
from osbuildd.compose.service import build_type, host_arch
from osbuildd.queue import JobError, errors

from .helpers import FAKE_OSBUILD, enqueue_manifest, until, wait_state
from .test_executor import open_services

HERE = Path(__file__).parent
FAKE_ARTIFACT = HERE / "fake_artifact_osbuild.py"
EMPTY = {"version": "2", "pipelines": []}
SECRET = "s3cr3t-failure-reasons-key"


@asynccontextmanager
async def weldr(services) -> AsyncIterator[WeldrClient]:
    with tempfile.TemporaryDirectory(prefix="fr-") as sock_dir:   # short: unix socket paths are limited
        async with weldr_server(build_app(services), Path(sock_dir) / "api.socket") as client:
            yield client


async def reasons_everywhere(client: WeldrClient, services, cid: str, *needles: str) -> dict:
    """Every reader of a FAILED compose has ``needles``; returns compose/info's error field."""
    log = await client.get(f"/api/v1/compose/log/{cid}")
    assert log.status == 200
    assert "The compose result is empty" not in log.text
    for n in needles:
        assert n in log.text, (n, log.text)
    assert log.text.count(failure.MARK) == 1, log.text   # once, whether from disk or rendered

    tar = await client.get(f"/api/v1/compose/logs/{cid}")
    assert tar.status == 200
    with tarfile.open(fileobj=io.BytesIO(tar.body)) as tf:
        names = tf.getnames()
        osbuild_log = tf.extractfile("logs/osbuild.log").read().decode()
        error_json = json.loads(tf.extractfile("logs/error.json").read())
    assert names == ["logs/osbuild.log", "logs/error.json"]
    for n in needles:
        assert n in osbuild_log, (n, osbuild_log)
    assert osbuild_log.count(failure.MARK) == 1

    info = await client.get(f"/api/v1/compose/info/{cid}")
    body = info.json()
    assert info.status == 200 and body["queue_status"] == "FAILED"
    assert body["error"] == error_json
    assert {"id", "name", "reason"} <= set(body["error"])
    assert any(n in json.dumps(body["error"]) for n in needles)

    c = await services.compose.get(cid)
    out = io.StringIO()
    report_failure(c.error, Path("/x/osbuild.log"), out)
    for n in needles:
        assert n in out.getvalue(), (n, out.getvalue())
    assert out.getvalue().startswith("osbuildd build: build failed: ")
    for text in (log.text, osbuild_log, info.text, out.getvalue()):
        assert SECRET not in text
    return body["error"]


async def test_stage_failure(tmp_path, fake):
    s = await open_services(tmp_path, osbuild=fake("failure"))
    try:
        cid = await enqueue_manifest(s, EMPTY, exports=["archive"], filename="x")
        c = await wait_state(s, cid, {"failed", "finished"}, 60)
        assert c.state == "failed"
        # the block is on disk, for anything reading the log file itself
        assert failure.MARK in c.log_path.read_text()
        async with weldr(s) as client:
            err = await reasons_everywhere(client, s, cid, "error id: 10 (ErrorBuildJob)",
                                           "stage org.osbuild.error failed", "stage: org.osbuild.error",
                                           "Error stage will now return error: 3")
        assert err["id"] == 10 and err["stage"] == "org.osbuild.error"
        assert "via" not in err and "failed_job" not in err   # the build job itself failed
        assert err["lines"][-1] == "Error stage will now return error: 3"
    finally:
        await s.close()


async def test_stage_timeout(tmp_path, fake):
    s = await open_services(tmp_path, osbuild=fake("hang"), stage_timeout=1)
    try:
        cid = await enqueue_manifest(s, EMPTY, exports=["archive"], filename="x")
        c = await wait_state(s, cid, {"failed", "finished"}, 60)
        assert c.state == "failed"
        async with weldr(s) as client:
            err = await reasons_everywhere(client, s, cid, "exceeded the stage timeout of 1s",
                                           "stage: org.osbuild.mkdir", "[builder] stage_timeout")
        assert err["stage"] == "org.osbuild.mkdir"
        assert any("Starting module org.osbuild.mkdir" in ln for ln in err["lines"])
    finally:
        await s.close()


async def _running_in_a_stage(s) -> tuple[str, object]:
    """A compose started on the hanging fake osbuild, once its progress names a stage."""
    cid = await enqueue_manifest(s, EMPTY, exports=["archive"], filename="x")
    c = await wait_state(s, cid, {"running"}, 30)
    async with asyncio.timeout(30):
        while not (c.progress and c.progress.get("stage")):
            await asyncio.sleep(0.05)
            c = await s.compose.get(cid)
    return cid, c


async def test_cancel(tmp_path, fake):
    s = await open_services(tmp_path, osbuild=fake("hang"))
    try:
        cid, c = await _running_in_a_stage(s)
        async with weldr(s) as client:
            r = await client.delete(f"/api/v1/compose/cancel/{cid}")
            assert r.status == 200, r.text
            # at once: the reason and the stage, before the executor has stopped the build
            info = (await client.get(f"/api/v1/compose/info/{cid}")).json()
            assert info["error"]["reason"] == "canceled by user"
            # then the executor adds the log's last lines, on disk and in the job
            await until(lambda: failure.MARK in c.log_path.read_text(), 30)
            await until(lambda: (tmp_path / "results" / cid / "result.json").exists(), 30)
            err = await reasons_everywhere(client, s, cid, "canceled by user", "stage: org.osbuild.mkdir",
                                           "Starting module org.osbuild.mkdir")
        assert err["id"] == 10 and "explanation" in err
    finally:
        await s.close()


async def test_shutdown_then_restart(tmp_path, fake):
    s = await open_services(tmp_path, osbuild=fake("hang"))
    cid, c = await _running_in_a_stage(s)
    await s.close()
    s = await open_services(tmp_path)   # the daemon starts again: the compose stays FAILED
    try:
        async with weldr(s) as client:
            err = await reasons_everywhere(client, s, cid, "daemon shutting down",
                                           "not restarted when the daemon starts again",
                                           "stage: org.osbuild.mkdir")
        assert err["id"] == 10 and "via" not in err
    finally:
        await s.close()


async def test_crash_recovery_reason(tmp_path, fake):
    """A build the daemon died under (failed "interrupted" at the next start; nothing was appended to
    its log): the routes render the reason themselves."""
    s = await open_services(tmp_path, osbuild=fake("hang"))
    try:
        cid = await enqueue_manifest(s, EMPTY, exports=["archive"], filename="x")
        await wait_state(s, cid, {"running"}, 30)
        await s.jobs.release_running(errors.REASON_INTERRUPTED, owner="local")
        async with weldr(s) as client:
            await reasons_everywhere(client, s, cid, "interrupted", "the daemon died")
    finally:
        await s.close()


async def _refusing_s3() -> tuple[web.AppRunner, str]:
    """An S3 endpoint that refuses every request, as a bucket without rights does."""
    async def deny(request: web.Request) -> web.Response:
        return web.Response(status=403, content_type="application/xml", text=(
            "<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code>"
            # a provider quoting a credential and a signed URL: neither may reach a reader
            f"<Message>Access Denied by the test server (key {SECRET}, https://x/y?a=1&amp;sig=abcdef)"
            "</Message></Error>"))
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", deny)
    return await serve(app)


async def test_upload_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_ARTIFACT_NAME", "disk.img")
    runner, endpoint = await _refusing_s3()
    s = await open_services(tmp_path, osbuild=str(FAKE_ARTIFACT))
    try:
        target = UploadTarget("org.osbuild.aws.s3", "disk", {
            "endpoint": endpoint, "region": "us-east-1", "bucket": "no-rights", "key": "k",
            "accessKeyID": "testing", "secretAccessKey": SECRET})
        cid = await enqueue_manifest(s, EMPTY, exports=["image"], filename="disk.img", targets=[target])
        c = await wait_state(s, cid, {"failed", "finished"}, 120)
        assert c.state == "failed" and c.error["id"] == 28
        async with weldr(s) as client:
            err = await reasons_everywhere(client, s, cid, "error id: 28 (ErrorTargetError)",
                                           "at least one target failed",
                                           "upload to org.osbuild.aws.s3 failed", "Access Denied",
                                           "sig=***")
        assert err["details"][0]["target"] == "org.osbuild.aws.s3"
        assert SECRET not in json.dumps(c.result) and "abcdef" not in json.dumps(c.result)
    finally:
        await s.close()
        await runner.cleanup()


async def test_depsolve_failure_after_start(tmp_path):
    """The depsolve job fails after the compose was queued (a worker's solver, a repository gone
    meanwhile): the build fails "dependency failed" and every reader shows the solver's own error."""
    s = await open_services(tmp_path, local_executor=False)
    try:
        dep = store.GraphJob("depsolve", {"package_sets": {}}, [])
        mani = store.GraphJob("manifest-id-only", {}, [])
        build = store.GraphJob(build_type(host_arch()), {"targets": [], "pipeline_names": None}, [])
        dep.id, mani.id, build.id = (str(uuid.uuid4()) for _ in range(3))
        mani.dependencies, build.dependencies = [dep.id], [mani.id]
        await store.insert_graph(s.db, s.jobs, [dep, mani, build], {
            "id": build.id, "depsolve_job": dep.id, "manifest_job": mani.id, "request": {"test": True},
            "blueprint_name": "bp", "blueprint_version": "0.0.1", "image_type": "tar", "distro": "test",
            "arch": host_arch(), "origin": "test", "channel": "", "created": 0.0, "size": 0,
            "image_filename": "x"}, "")
        dq = await s.jobs.dequeue(["depsolve"], channels=None, timeout=5, owner="worker-1")
        assert dq is not None and dq.job.id == dep.id
        await s.jobs.finish(dq.token, {"error": "repo gone"}, JobError(
            errors.DNF_REPO_ERROR, "repository http://127.0.0.1:1/debian: 500 Internal Server Error",
            {"package": "tmux"}))
        c = await s.compose.get(build.id)
        assert c.state == "failed" and c.error["id"] == errors.JOB_DEPENDENCY
        async with weldr(s) as client:
            err = await reasons_everywhere(client, s, build.id, "error id: 25 (ErrorDNFRepoError)",
                                           "500 Internal Server Error", "failed job: depsolve")
        assert err["id"] == 25 and err["via"]["reason"] == "dependency failed" and err["failed_job"] == "depsolve"
    finally:
        await s.close()


@pytest.mark.build
def test_osbuildd_build_prints_the_failure(tmp_path, shared_state_dir):
    """The real ``osbuildd build`` (depsolve from the run's shared cache, the stage failure replayed):
    one block with id, reason, stage and last lines on stderr, exit 1, no image."""
    import os
    import subprocess
    import sys
    state = tmp_path / "state"
    state.mkdir()
    for sub in ("store", "cache"):
        (state / sub).symlink_to(shared_state_dir / sub)
    env = {**os.environ, "FAKE_OSBUILD_NOTES": str(OSBUILD), "FAKE_OSBUILD_MODE": "failure", "TERM": "dumb"}
    p = subprocess.run(
        [sys.executable, "-m", "osbuildd.cli", "build", "--distro", "debian-12", "--type", "qcow2",
         "--state-dir", str(state), "--output", str(tmp_path / "out"), "--osbuild", str(FAKE_OSBUILD)],
        capture_output=True, text=True, timeout=900, env=env)
    assert p.returncode == 1, p.stderr[-3000:]
    assert p.stdout == "" and not (tmp_path / "out").exists()
    err = p.stderr[p.stderr.index("osbuildd build: build failed: stage org.osbuild.error failed"):]
    for needle in ("error id: 10 (ErrorBuildJob)", "stage: org.osbuild.error", "last lines:",
                   "Error stage will now return error: 3", "log: "):
        assert needle in err, err
    log_path = Path(err.split("log: ", 1)[1].strip())
    assert failure.MARK in log_path.read_text()   # the same block is in the log on disk
