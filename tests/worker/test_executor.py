"""The composer's own jobs with ``[builder] local_executor = false``: the manifest job (upstream's
composer does it itself) runs in the daemon, the depsolve and build jobs wait for remote workers.
In-process services on a tmp state dir (a warm apt cache for the depsolve the test does as a worker)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from osbuildd.blueprint import Blueprint
from osbuildd.compose import ComposeRequest
from osbuildd.compose.handlers import run_depsolve
from osbuildd.config import Config
from osbuildd.executor import start_local
from osbuildd.queue import JobStatus
from osbuildd.services import Services


def request() -> ComposeRequest:
    bp = Blueprint.from_json({"name": "remote", "version": "0.0.1", "packages": [{"name": "tmux"}]})
    bp.initialize()
    return ComposeRequest(distro="debian-12", arch="x86_64", image_type="tar", blueprint=bp, origin="test")


async def open_services(tmp_path: Path, shared_state_dir: Path, local_executor: bool) -> Services:
    state = tmp_path / "state"
    state.mkdir()
    os.symlink(shared_state_dir / "cache", state / "cache")
    config = Config.embedded(state)
    config.builder.local_executor = local_executor
    config.builder.prefetch = False
    return await Services.open(config)


async def test_remote_builds_leave_the_manifest_job_to_the_composer(tmp_path: Path, shared_state_dir: Path) -> None:
    s = await open_services(tmp_path, shared_state_dir, local_executor=False)
    try:
        executor = await start_local(s)
        assert s.executor is executor   # closed by services.close() like a full one
        cid = await s.compose.enqueue(request())   # a Cloud compose: every job pending
        build = await s.jobs.get(cid)
        manifest_job = await s.jobs.get(build.dependencies[0])
        dep = await s.jobs.get(manifest_job.dependencies[0])
        # the depsolve is a worker's job: this test takes it as a remote worker would
        async with asyncio.timeout(60):
            dq = await s.jobs.dequeue(["depsolve"], channels=None, owner="remote-worker")
        assert dq is not None and dq.job.id == dep.id
        result, error = await run_depsolve(s.config, dq.job.args)
        assert error is None, error
        await s.jobs.finish(dq.token, result, error)
        # the manifest job: done by the composer itself
        async with asyncio.timeout(120):
            while (m := await s.jobs.get(manifest_job.id)).status != JobStatus.FINISHED:
                assert m.status in (JobStatus.PENDING, JobStatus.RUNNING), m.error
                await asyncio.sleep(0.1)
        assert m.error is None and m.result["manifest"]["version"] == "2"
        # the build waits for a remote worker, ready with the manifest
        async with asyncio.timeout(60):
            dq = await s.jobs.dequeue([build.type], channels=None, owner="remote-worker")
        assert dq is not None and dq.job.id == cid
        assert dq.dynamic_args[0]["manifest"] == m.result["manifest"]
        names = {t.get_name() for t in executor._tasks}
        assert not any(n.startswith(("build-", "depsolve-", "prefetch")) for n in names), names
        assert "manifest" in names
    finally:
        await s.close()


async def test_local_executor_runs_every_loop(tmp_path: Path, shared_state_dir: Path) -> None:
    s = await open_services(tmp_path, shared_state_dir, local_executor=True)
    try:
        executor = await start_local(s)
        names = {t.get_name() for t in executor._tasks}
        assert {"manifest", "depsolve-0", "build-0"} <= names, names
        assert s.executor is executor
    finally:
        await s.close()


async def test_start_false_runs_nothing(tmp_path: Path, shared_state_dir: Path) -> None:
    s = await open_services(tmp_path, shared_state_dir, local_executor=False)
    try:
        executor = await start_local(s, start=False)
        assert executor._tasks == [] and s.executor is None
    finally:
        await s.close()
