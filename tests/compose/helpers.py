"""Shared helpers of the compose tests."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from osbuildd.compose import store
from osbuildd.compose.model import UploadTarget
from osbuildd.compose.service import build_type, host_arch, target_json
from osbuildd.config import Config, DatabaseConfig
from osbuildd.runner.cleanup import loops_backed_under, mounts_under, processes_marked

# replays osbuild's recorded samples (tests/data/osbuild) in the mode FAKE_OSBUILD_MODE names
FAKE_OSBUILD = Path(__file__).parent.parent / "runner" / "fake_osbuild.py"


def embedded_config(state_dir: Path, backend: Any = None) -> Config:
    """Config.embedded(state_dir) on ``backend`` (a pgtest.Backend; None or sqlite: the state dir's
    SQLite file, else the test's PostgreSQL database)."""
    config = Config.embedded(state_dir)
    if backend is not None and backend.is_pg:
        config.database = DatabaseConfig(url=backend.url, pool_size=4)
    return config


async def enqueue_manifest(services: Any, manifest: dict, *, exports: list[str], filename: str,
                           checkpoints: list[str] = (), targets: list[UploadTarget] = ()) -> str:
    """A compose whose manifest job is already done: the build job is ready for the executor.

    Lets the executor/runner/engine path run without the mirror (depsolve + manifest generation
    have tests of their own)."""
    created = time.time()
    mani = store.GraphJob("manifest-id-only", {}, [], status="finished", result={
        "manifest": manifest, "exports": exports, "checkpoints": list(checkpoints), "filename": filename,
        "pipeline_names": {"build": [], "payload": [p["name"] for p in manifest["pipelines"]]}})
    build = store.GraphJob(build_type(host_arch()), {
        "targets": [target_json(t, exports[-1], filename, created) for t in targets],
        "pipeline_names": None, "filename": filename}, [])
    import uuid
    mani.id, build.id = str(uuid.uuid4()), str(uuid.uuid4())
    build.dependencies = [mani.id]
    await store.insert_graph(services.db, services.jobs, [mani, build], {
        "id": build.id, "depsolve_job": None, "manifest_job": mani.id, "request": {"test": True},
        "blueprint_name": "tiny", "blueprint_version": "0.0.1", "image_type": "tar", "distro": "test",
        "arch": host_arch(), "origin": "test", "channel": "", "created": created, "size": 0,
        "image_filename": filename}, "")
    return build.id


async def until(pred: Any, within: float) -> None:
    """Poll ``pred()`` until it is true (the state lives in another process or on disk)."""
    async with asyncio.timeout(within):
        while True:
            if pred():
                return
            await asyncio.sleep(0.1)


async def wait_state(services: Any, cid: str, states: set[str], within: float = 600) -> Any:
    async with asyncio.timeout(within):
        while True:
            c = await services.compose.get(cid)
            if c.state in states:
                return c
            await asyncio.sleep(0.1)


def leftovers(state_dir: Path) -> dict[str, Any]:
    """What a finished/canceled build must not leave: processes, mounts, loop devices, tmp files."""
    tmp = state_dir / "tmp"
    roots = [state_dir, (state_dir / "store").resolve()]   # the store may be the run's shared one
    return {
        "processes": processes_marked(state_dir),
        "mounts": mounts_under(roots),
        "loops": loops_backed_under(roots),
        "tmp": sorted(os.listdir(tmp)) if tmp.is_dir() else [],
    }


NOTHING = {"processes": {}, "mounts": [], "loops": [], "tmp": []}
