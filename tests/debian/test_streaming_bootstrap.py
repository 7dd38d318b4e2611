"""Issue 13 §2: package downloads overlap with the bootstrap, and a warm store downloads nothing.

The .debs of Debian 12's required set are served by a slow loopback HTTP server in the test (the
files come from the run's shared source cache, fetched into it once if missing); the manifest's
curl source points at it. One file is held back until the bootstrap stage has reported that it is
consuming the others, so the overlap is forced, not hoped for: the bootstrap starts before the
source has finished, and indexes packages while the fetch is still running.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from osbuildd import distro
from osbuildd.depsolve import PackageSetRequest, PackageSpec, depsolve
from osbuildd.engine import sources
from osbuildd.engine.objectstore import Store

pytestmark = [pytest.mark.build, pytest.mark.usefixtures("require_root")]
BOOTSTRAP = "org.osbuildd.debian.bootstrap"
ENGINE = [sys.executable, "-m", "osbuildd.engine.cli"]
DELAY = 0.2      # seconds per file: the fetch of ~100 files takes a few seconds, 8 at a time
GATE_WAIT = 180  # a held-back file is served after this at the latest (the test then fails)


@pytest.fixture(scope="module")
def debs(shared_state_dir: Path) -> tuple[list[PackageSpec], Path]:
    """The required set and the directory its blobs are in (named by checksum)."""
    pkgs = asyncio.run(depsolve(distro.get("debian-12"), "x86_64", {"os": PackageSetRequest(include=[])},
                                shared_state_dir / "cache" / "depsolve"))["os"]
    assert len(pkgs) > 50
    store = Store(shared_state_dir / "store", None)
    try:
        asyncio.run(sources.fetch_curl(store, {p.checksum: p.url for p in pkgs}))
        return pkgs, store.sources_dir
    finally:
        store.close()


def manifest(pkgs: list[PackageSpec], base: str) -> dict[str, Any]:
    refs = {p.checksum: {} for p in sorted(pkgs, key=lambda p: p.checksum)}
    return {"version": "2",
            "sources": {"org.osbuild.curl": {"items": {p.checksum: {"url": f"{base}/{p.checksum}"} for p in pkgs}}},
            "pipelines": [{"name": "os", "stages": [{"type": BOOTSTRAP, "inputs": {"packages": {
                "type": "org.osbuild.files", "origin": "org.osbuild.source", "references": refs}},
                "options": {"architecture": "amd64", "suite": "bookworm"}}]}]}


@dataclass
class SlowMirror:
    """Serves ``files`` (checksum -> path) after ``DELAY`` each; ``held`` waits for ``gate`` and is
    then served, or answered 404 when ``fail_held``."""

    files: dict[str, Path]
    held: str
    fail_held: bool = False
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    requests: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.requests.append(name)
        await asyncio.sleep(DELAY)
        if name == self.held:
            try:
                await asyncio.wait_for(self.gate.wait(), GATE_WAIT)
            except TimeoutError:
                pass
            if self.fail_held:
                raise web.HTTPNotFound()
        path = self.files.get(name)
        if path is None:
            raise web.HTTPNotFound()
        return web.Response(body=await asyncio.to_thread(path.read_bytes))


@dataclass
class Run:
    result: dict[str, Any]
    records: list[dict[str, Any]]   # each with its context resolved ("ctx")
    gate_opened_by: str | None


def _partial_download_step(rec: dict[str, Any]) -> bool:
    """A step report of the bootstrap saying that some, not all, of its packages are there."""
    step = rec.get("progress", {}).get("progress", {}).get("progress", {})
    name = step.get("name", "")
    if rec["ctx"].get("stage") != BOOTSTRAP or not name.startswith("downloading "):
        return False
    got, total = (int(x) for x in name.split()[1].split("/"))
    return 0 < got < total


async def build(mirror: SlowMirror, m: dict[str, Any], store: Path, *extra: str) -> Run:
    """One engine build, its JSONSeq monitor read live; the gate opens when the bootstrap reports
    a partial download (it consumes the input while the fetch runs)."""
    r, w = os.pipe()
    proc = await asyncio.create_subprocess_exec(
        *ENGINE, "--store", str(store), "--json", "--monitor", "JSONSeqMonitor", f"--monitor-fd={w}",
        "--cache-max-size", "unlimited", *extra, "-",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        pass_fds=(w,))
    os.close(w)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                os.fdopen(r, "rb", buffering=0))
    records: list[dict[str, Any]] = []
    contexts: dict[str, dict[str, Any]] = {}
    opened: list[str] = []

    async def monitor() -> None:
        while line := await reader.readline():
            rec = json.loads(line.lstrip(b"\x1e"))
            ctx = rec["context"]
            if "origin" in ctx:
                p = ctx.get("pipeline", {})
                contexts[ctx["id"]] = {"pipeline": p.get("name"), "stage": p.get("stage", {}).get("name")}
            rec["ctx"] = contexts.get(ctx["id"], {})
            records.append(rec)
            if not mirror.gate.is_set() and _partial_download_step(rec):
                opened.append(rec["progress"]["progress"]["progress"]["name"])
                mirror.gate.set()

    try:
        mon = asyncio.ensure_future(monitor())
        out, err = await proc.communicate(json.dumps(m).encode())
        await asyncio.wait_for(mon, 30)
    finally:
        transport.close()
    assert out.strip(), f"engine exit {proc.returncode}, no result; stderr:\n{err.decode()[-3000:]}"
    return Run(json.loads(out), records, opened[0] if opened else None)


def _at(records: list[dict[str, Any]], message: str) -> float:
    return next(r["timestamp"] for r in records if r.get("message", "").startswith(message))


async def serving(mirror: SlowMirror) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_get("/{name}", mirror.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


def test_bootstrap_consumes_downloads_as_they_arrive_and_a_warm_store_fetches_nothing(
        debs: tuple[list[PackageSpec], Path], tmp_path: Path) -> None:
    pkgs, blobs = debs
    files = {p.checksum: blobs / p.checksum for p in pkgs}
    mirror = SlowMirror(files, held=sorted(files)[-1])
    store = tmp_path / "store"

    async def scenario() -> tuple[Run, Run, int]:
        runner, base = await serving(mirror)
        try:
            m = manifest(pkgs, base)
            cold = await build(mirror, m, store)
            cold_requests = len(mirror.requests)
            mirror.requests.clear()
            warm = await build(mirror, m, store)
            return cold, warm, cold_requests
        finally:
            await runner.cleanup()

    cold, warm, cold_requests = asyncio.run(scenario())
    assert cold.result["success"] is True, json.dumps(cold.result.get("error"))[-3000:]
    assert cold_requests == len(pkgs)
    assert not any(i["cached"] for i in cold.result["sources"]["org.osbuild.curl"])
    # the bootstrap began before the source finished and reported packages arriving meanwhile
    assert cold.gate_opened_by is not None, "the bootstrap never reported a partial download"
    started = _at(cold.records, f"Starting module {BOOTSTRAP}")
    fetched = _at(cold.records, "Finished module source org.osbuild.curl")
    assert started < fetched
    print(f"\nfetch/bootstrap overlap: {fetched - started:.2f}s (gate opened at {cold.gate_opened_by})")
    # the source's records kept their own context while the stage ran
    src = next(r for r in cold.records if r.get("message", "").startswith("Finished module source"))
    assert src["ctx"]["pipeline"] == "source org.osbuild.curl" and src["ctx"]["stage"] is None
    installed = {p["name"] for p in cold.result["metadata"]["os"][BOOTSTRAP]["packages"]}
    assert installed == {p.name for p in pkgs}

    # warm: everything is in the store, nothing reaches the mirror, the same packages are installed
    assert warm.result["success"] is True, json.dumps(warm.result.get("error"))[-3000:]
    assert mirror.requests == []
    assert all(i["cached"] for i in warm.result["sources"]["org.osbuild.curl"])
    assert {p["name"] for p in warm.result["metadata"]["os"][BOOTSTRAP]["packages"]} == installed
    assert warm.gate_opened_by is None   # a complete input: no partial download to report


def test_source_failure_while_the_bootstrap_streams_is_the_source_error(
        debs: tuple[list[PackageSpec], Path], tmp_path: Path) -> None:
    pkgs, blobs = debs
    files = {p.checksum: blobs / p.checksum for p in pkgs}
    held = sorted(files)[-1]
    mirror = SlowMirror(files, held=held, fail_held=True)
    store = tmp_path / "store"

    async def scenario() -> Run:
        runner, base = await serving(mirror)
        try:
            return await build(mirror, manifest(pkgs, base), store, "--checkpoint", "os")
        finally:
            await runner.cleanup()

    run = asyncio.run(scenario())
    assert run.gate_opened_by is not None   # the bootstrap was running on a partial input
    res = run.result
    assert res["success"] is False and res["type"] == "error"
    assert res["error"]["type"] == "org.osbuild.error.source"
    assert res["error"]["details"]["source"]["type"] == "org.osbuild.curl"
    assert held in res["error"]["details"]["source"]["output"] and "404" in res["error"]["details"]["source"]["output"]
    assert res["sources"]["success"] is False
    # the monitor says so: the source failed, the stage streaming from it was stopped unfinished
    src = next(r for r in run.records if r.get("message", "").startswith("Finished module source"))
    assert src["result"]["success"] is False
    boot = [r for r in run.records if r.get("message") == f"Finished module {BOOTSTRAP}"]
    assert len(boot) == 1 and boot[0]["result"]["success"] is False
    assert "local repository with" not in boot[0]["result"]["output"]   # mmdebstrap never ran
    assert run.records[-1]["message"] == "manifest - failed\n"
    # nothing was committed, no scratch is left
    assert list((store / "objects").iterdir()) == []
    assert list((store / "tmp").iterdir()) == []
