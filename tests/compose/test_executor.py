"""The local executor end to end without the mirror: the real engine on the tiny manifest, and a replay
of real osbuild output (tests/runner/fake_osbuild.py) for hangs, failures and crashes."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from testdata import data_file

from osbuildd.compose import UploadTarget
from osbuildd.config import Config
from osbuildd.executor import start_local
from osbuildd.services import Services

from .helpers import NOTHING, enqueue_manifest, leftovers, until, wait_state


@pytest.fixture(scope="module")
def tiny() -> dict:
    return json.loads(data_file("osbuild", "tiny-tar.manifest.json").read_text())


async def open_services(state: Path, **builder) -> Services:
    config = Config.embedded(state)
    for k, v in builder.items():
        setattr(config.builder, k, v)
    s = await Services.open(config)
    await start_local(s)
    return s


async def test_tiny_build_through_executor(tmp_path, tiny, require_root):
    s = await open_services(tmp_path)
    try:
        cid = await enqueue_manifest(s, tiny, exports=["archive"], filename="tree.tar",
                                     targets=[UploadTarget("org.osbuild.worker.server")])
        seen: list[float] = []
        async with asyncio.timeout(120):
            while (c := await s.compose.get(cid)).state not in ("finished", "failed"):
                if c.progress:
                    seen.append(c.progress["percent"])
                await asyncio.sleep(0.05)
        assert c.state == "finished", c.error
        assert seen == sorted(seen)
        assert c.progress["percent"] == 100.0
        res = tmp_path / "results" / cid
        assert c.image_path == res / "tree.tar" and c.image_path.stat().st_size > 0
        assert json.loads((res / "manifest.json").read_text()) == tiny
        result = json.loads((res / "result.json").read_text())
        assert result["success"] is True and result["osbuild_output"]["success"] is True
        assert result["target_results"] == [{"name": "org.osbuild.worker.server",
                                             "options": {"artifact_path": str(res / "tree.tar")}}]
        assert c.result["target_results"] == result["target_results"]
        assert "org.osbuild.tar" in c.log_path.read_text()
        assert len(list((res / "logs" / "stages").glob("*.log"))) >= 4
        assert leftovers(tmp_path) == NOTHING
        # the per-stage timings are stored with the job, and Weldr's metadata tar carries them
        logged = [(name, st["id"]) for name, sts in result["osbuild_output"]["log"].items() for st in sts]
        assert [(st["pipeline"], st["id"]) for st in result["timings"]["stages"]] == logged
        assert c.timings == result["timings"] and c.timings["origin"] == "result"
        await _metadata_has_timings(s, cid, c.timings)
    finally:
        await s.close()


async def _metadata_has_timings(s: Services, cid: str, timings: dict) -> None:
    import io
    import tarfile

    from aiohttp.test_utils import TestClient, TestServer

    from osbuildd.api.weldr.app import build_app

    async with TestClient(TestServer(build_app(s))) as client:
        r = await client.get(f"/api/v1/compose/metadata/{cid}")
        assert r.status == 200, await r.text()
        body = await r.read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert tar.getnames() == [f"{cid}.json", f"{cid}-timings.json"]
        got = json.loads(tar.extractfile(f"{cid}-timings.json").read())
    assert got == timings and [st["type"] for st in got["stages"]][-1] == "org.osbuild.tar"


async def test_cancel_running_build(tmp_path, fake):
    s = await open_services(tmp_path, osbuild=fake("stubborn"))
    try:
        cid = await enqueue_manifest(s, {"version": "2", "pipelines": []}, exports=["archive"], filename="x")
        c = await wait_state(s, cid, {"running"}, 30)
        async with asyncio.timeout(30):
            while not (c.progress and c.progress.get("stage")):
                await asyncio.sleep(0.05)
                c = await s.compose.get(cid)
        assert c.progress["stage"] == "org.osbuild.mkdir"
        await s.compose.cancel(cid)
        c = await wait_state(s, cid, {"canceled"}, 60)
        assert c.weldr_status == "FAILED" and c.image_path is None
        # the executor finishes its side (kill, cleanup) shortly after
        await until(lambda: leftovers(tmp_path) == NOTHING, 30)
        assert "canceled" in c.log_path.read_text()
    finally:
        await s.close()


async def test_stage_timeout_fails_the_compose(tmp_path, fake):
    s = await open_services(tmp_path, osbuild=fake("hang"), stage_timeout=1)
    try:
        cid = await enqueue_manifest(s, {"version": "2", "pipelines": []}, exports=["archive"], filename="x")
        c = await wait_state(s, cid, {"failed", "finished"}, 60)
        assert c.state == "failed" and c.error["id"] == 10
        assert "exceeded the stage timeout of 1s" in c.error["reason"]
        assert c.error["details"]["stage"] == "org.osbuild.mkdir"
        assert leftovers(tmp_path) == NOTHING
    finally:
        await s.close()


async def test_stage_failure_and_crash(tmp_path, fake):
    s = await open_services(tmp_path, osbuild=fake("failure"))
    try:
        cid = await enqueue_manifest(s, {"version": "2", "pipelines": []}, exports=["archive"], filename="x")
        c = await wait_state(s, cid, {"failed", "finished"}, 60)
        assert c.state == "failed" and c.error["reason"] == "stage org.osbuild.error failed"
        assert c.error["details"]["output"].endswith("Error stage will now return error: 3")
        assert c.result["success"] is False and c.result["osbuild_output"]["success"] is False
        # a failed build keeps the timings of the stages that ran, the failed one last
        assert c.timings is not None and c.timings["stages"][-1]["type"] == "org.osbuild.error"
    finally:
        await s.close()
    s = await open_services(tmp_path, osbuild=fake("crash"))
    try:
        cid = await enqueue_manifest(s, {"version": "2", "pipelines": []}, exports=["archive"], filename="x")
        c = await wait_state(s, cid, {"failed", "finished"}, 60)
        assert c.state == "failed" and "osbuild did not return any output" in c.error["reason"]
        assert "mount failed" in c.error["details"]["stderr"]
    finally:
        await s.close()


async def test_shutdown_fails_running_build(tmp_path, fake):
    s = await open_services(tmp_path, osbuild=fake("hang"))
    cid = await enqueue_manifest(s, {"version": "2", "pipelines": []}, exports=["archive"], filename="x")
    await wait_state(s, cid, {"running"}, 30)
    await asyncio.sleep(0.5)
    await s.close()
    s = await open_services(tmp_path)
    try:
        c = await s.compose.get(cid)
        assert c.state == "failed" and c.error["reason"] == "daemon shutting down"
        assert leftovers(tmp_path) == NOTHING
    finally:
        await s.close()


def _answers(sock: Path) -> bool:
    import socket
    try:
        with socket.socket(socket.AF_UNIX) as probe:
            probe.connect(str(sock))
        return True
    except OSError:
        return False


async def test_kill_9_daemon_mid_build_then_restart(tmp_path, fake, repo_root):
    """A real `osbuildd serve` is killed with SIGKILL while building; the next start recovers."""
    state = tmp_path / "state"
    fake_path = fake("hang")
    cfg = tmp_path / "osbuildd.toml"
    cfg.write_text(f'state_dir = "{state}"\nlog_format = "json"\n[weldr]\nsocket = "{tmp_path}/api.socket"\n'
                   f'[builder]\nosbuild = "{fake_path}"\n')
    # enqueue with the service (no executor here), then let the daemon take it
    s = await Services.open(Config.load(cfg))
    await start_local(s, start=False)
    cid = await enqueue_manifest(s, {"version": "2", "pipelines": []}, exports=["archive"], filename="x")
    await s.close()

    async def serve() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "osbuildd.cli", "serve", "--config", str(cfg),
            stdout=asyncio.subprocess.DEVNULL, stderr=open(tmp_path / "serve.log", "ab"))  # noqa: ASYNC230

    daemon = await serve()
    try:
        pid_file = state / "store" / "fake.pid"
        await until(lambda: pid_file.exists() and pid_file.read_text(), 60)
        build_pid = int(pid_file.read_text())
        await asyncio.sleep(0.5)
        daemon.kill()
        await daemon.wait()
        # the build outlived its daemon (own session) — exactly what recovery must clean up
        assert build_pid in leftovers(state)["processes"]
        daemon = await serve()
        await until(lambda: _answers(tmp_path / "api.socket"), 60)   # not the dead daemon's socket file
        await until(lambda: not leftovers(state)["processes"], 60)
    finally:
        daemon.terminate()
        await daemon.wait()
    s = await Services.open(Config.load(cfg), recover=False)
    await start_local(s, start=False)
    try:
        c = await s.compose.get(cid)
        assert c.state == "failed" and c.error["reason"] == "interrupted", (c.state, c.error)
        assert leftovers(state) == NOTHING
    finally:
        await s.close()
