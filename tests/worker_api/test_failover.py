"""``osbuildd worker`` with several composer addresses (daemons on one database): the client uses one
and moves every request to the next (round-robin) on a connection error, a timeout or a 5xx; the
addresses from the command line and osbuild-worker.toml. Unit level: small aiohttp servers on
127.0.0.1 (one refusing, closing or answering 5xx, the other answering). For real: ``osbuildd worker``
given a closed port first and a real daemon second takes a build job there (tests/worker's fake
osbuild builds it), uploads its artifact and settles it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from aiohttp import web
from foundation.daemon_helpers import free_port
from testdata import OSBUILD

from osbuildd.cli_worker import settings_from
from osbuildd.queue import JobStatus
from osbuildd.worker import client as client_mod
from osbuildd.worker.client import ComposerError, WorkerClient
from osbuildd.worker.config import WorkerConfigError, WorkerSettings
from osbuildd.worker.jobs import Pending, deliver

from .test_builds import enqueue_build, target
from .wdaemon import BASE, WorkerDaemon

REPO = Path(__file__).resolve().parents[2]
FAKE = REPO / "tests" / "worker" / "client_fake_osbuild.py"
TOKEN = "6a1e3d2c-4b5a-4f6e-8d7c-9b0a1f2e3d4c"
JOB = {"href": f"{BASE}/jobs", "id": "0c6f1a2e-0000-4000-8000-000000000001", "kind": "RequestJob",
       "type": "depsolve", "location": f"{BASE}/jobs/{TOKEN}", "artifact_location": f"{BASE}/jobs/{TOKEN}/artifacts/"}


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_mod, "BACKOFF_FIRST", 0.01)


@dataclass
class Fake:
    """A worker API on 127.0.0.1: ``mode`` "ok" answers, "503"/"500" answer that status, "close" drops
    the connection without an answer (after reading the request: a result whose answer is lost)."""
    mode: str = "ok"
    port: int = 0
    hits: list[str] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict)
    results: list[Any] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.hits.append(f"{request.method} {request.path}")
        if self.mode == "close":
            assert request.transport is not None
            request.transport.close()
            raise ConnectionResetError("dropped")
        if self.mode != "ok":
            return web.json_response({"kind": "Error", "id": "0", "reason": self.mode}, status=int(self.mode))
        if request.method == "POST" and request.path == f"{BASE}/jobs":
            return web.json_response(JOB, status=201)
        if request.method == "GET":
            return web.json_response({"id": TOKEN, "kind": "JobStatus", "canceled": False})
        if request.method == "PUT":
            self.uploads[request.path.rsplit("/", 1)[1]] = body
            return web.Response(status=200)
        self.results.append(body)
        return web.json_response({"id": TOKEN, "kind": "UpdateJobResponse"})


@asynccontextmanager
async def fakes(*modes: str) -> AsyncIterator[list[Fake]]:
    runners, out = [], []
    try:
        for mode in modes:
            f = Fake(mode)
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", f.handle)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            runners.append(runner)
            f.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            out.append(f)
        yield out
    finally:
        for runner in runners:
            await runner.cleanup()


@asynccontextmanager
async def worker_client(*urls: str) -> AsyncIterator[WorkerClient]:
    settings = WorkerSettings(composer=urls[0], composers=list(urls))
    async with WorkerClient(settings) as c:
        yield c


def closed_url() -> str:
    return f"http://127.0.0.1:{free_port()}"   # nothing listens: connection refused


async def test_unanswering_first_server_moves_every_request_to_the_second() -> None:
    async with fakes("503", "ok") as (a, b), worker_client(a.url, closed_url(), b.url) as c:
        job = await c.request_job(["depsolve"], "x86_64", None)
        assert job == JOB and c.root == b.url
        assert a.hits == [f"POST {BASE}/jobs"] and b.hits == [f"POST {BASE}/jobs"]
        # the job taken goes on through the server in use: heartbeat, upload, result
        assert await c.job_canceled(JOB["location"]) is False
        await c.update(JOB["location"], {"result": {"packages": {}}})
        assert len(a.hits) == 1 and len(b.hits) == 3


async def test_dropped_connections_and_a_lost_result_answer(tmp_path: Path) -> None:
    """A server that drops the connection after reading the result (its answer lost): the result goes
    to the next one, whose 2xx is done; an upload there starts from the file's beginning."""
    art = tmp_path / "disk.qcow2"
    art.write_bytes(os.urandom(3 * 1024 * 1024))
    async with fakes("ok", "ok") as (a, b), worker_client(a.url, b.url) as c:
        a.mode = "close"
        await c.put_artifact(JOB["artifact_location"], "disk.qcow2", art)
        assert b.uploads == {"disk.qcow2": art.read_bytes()} and c.root == b.url
        b.mode, a.mode = "close", "ok"   # round-robin: back to the first
        await c.update(JOB["location"], {"result": {"ok": True}})
        assert c.root == a.url and b.hits[-1] == f"PATCH {BASE}/jobs/{TOKEN}" and len(a.results) == 1


async def test_a_500_everywhere_is_the_answer_and_one_server_is_unchanged() -> None:
    async with fakes("500", "500") as (a, b), worker_client(a.url, b.url) as c:
        with pytest.raises(ComposerError) as err:
            await c.job_canceled(JOB["location"])
        assert err.value.status == 500 and len(a.hits) == len(b.hits) == 1
    async with fakes("500") as (a,), worker_client(a.url) as c:   # one address: no retry of a 500, as before
        with pytest.raises(ComposerError):
            await c.job_canceled(JOB["location"])
        assert len(a.hits) == 1
        a.mode = "ok"
        assert await c.job_canceled(JOB["location"]) is False


async def test_deliver_through_the_next_server(tmp_path: Path) -> None:
    """The worker's own delivery of a kept result (artifact, then result) when the first server is gone."""
    art = tmp_path / "disk.qcow2"
    art.write_bytes(b"image")
    pending = Pending(tmp_path / "state")
    entry = {"location": JOB["location"], "update": {"result": {"success": True}}, "dir": None,
             "artifacts": [{"location": JOB["artifact_location"], "name": "disk.qcow2", "path": str(art)}]}
    await asyncio.to_thread(pending.save, TOKEN, entry)
    async with fakes("ok") as (b,), worker_client(closed_url(), b.url) as c:
        await deliver(c, pending, TOKEN, entry)
    assert b.uploads == {"disk.qcow2": b"image"} and len(b.results) == 1
    assert pending.load() == []


def test_addresses_from_the_command_line_and_the_file(tmp_path: Path) -> None:
    toml = tmp_path / "osbuild-worker.toml"
    toml.write_text("")
    cfg = ["--config", str(toml)]
    with pytest.raises(WorkerConfigError, match="no composer"):
        settings_from(cfg)
    s, _ = settings_from([*cfg, "a:1"])
    assert (s.composer, s.composers) == ("https://a:1", ["https://a:1"])
    s, _ = settings_from([*cfg, "a:1", "b:2,http://c:3"])
    assert s.composers == ["https://a:1", "https://b:2", "http://c:3"] and s.composer == "https://a:1"
    s, _ = settings_from([*cfg, "--server", "https://a:1", "--composer", "b:2", "--server", "a:1"])
    assert s.composers == ["https://a:1", "https://b:2"]
    with pytest.raises(WorkerConfigError):
        settings_from([*cfg, "a:1", "--composer", "b:2"])   # ADDRESS or --composer, as before
    toml.write_text(tomli_w.dumps({"composer": {"url": ["a:1", "b:2"], "proxy": "p"}}))
    s, unknown = settings_from(cfg)
    assert s.composers == ["https://a:1", "https://b:2"] and unknown == []
    toml.write_text(tomli_w.dumps({"composer": {"url": "a:1"}}))
    assert settings_from(cfg)[0].composers == ["https://a:1"]
    assert settings_from([*cfg, "z:9"])[0].composers == ["https://z:9"]   # the command line wins
    toml.write_text(tomli_w.dumps({"composer": {"url": 7}}))
    with pytest.raises(WorkerConfigError, match="composer.url"):
        settings_from(cfg)


# -- for real: osbuildd worker, a closed port first, a real daemon second -----------------------

async def until(pred: Callable[[], Any], what: str, within: float = 120.0) -> Any:
    async with asyncio.timeout(within):
        while True:
            got = pred()
            if asyncio.iscoroutine(got):
                got = await got
            if got:
                return got
            await asyncio.sleep(0.2)
    raise AssertionError(what)


async def test_worker_fails_over_to_a_real_daemon(tmp_path: Path, wd: WorkerDaemon) -> None:
    async with wd.side_store() as jobs:
        build = await enqueue_build(wd, jobs, [target("org.osbuild.local", {})])
    closed = f"https://localhost:{free_port()}"
    (tmp_path / "osbuild-worker.toml").write_text(tomli_w.dumps({"base_path": BASE}))
    built = tmp_path / "built"
    built.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO), CLIENT_FAKE_NOTES=str(OSBUILD), CLIENT_FAKE_ARTIFACT="disk.qcow2",
               CLIENT_FAKE_COPY_DIR=str(built), CLIENT_FAKE_MODE="build", CLIENT_FAKE_DELAY="0.01")
    log = tmp_path / "worker.log"
    with await asyncio.to_thread(open, log, "wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "osbuildd.cli", "worker", "--state-dir", str(tmp_path / "w"),
            "--store", str(tmp_path / "w-store"), "--osbuild", str(FAKE), "--poll-interval", "1",
            "--config", str(tmp_path / "osbuild-worker.toml"), "--composer", f"{closed},{wd.url}",
            "--cert", str(wd.certs / "worker-crt.pem"), "--key", str(wd.certs / "worker-key.pem"),
            "--ca", str(wd.certs / "ca-crt.pem"), cwd=REPO, env=env, stdout=err, stderr=err)
    try:
        async def settled() -> bool:
            async with wd.side_store() as jobs:
                return (await jobs.get(build)).status == JobStatus.FINISHED
        await until(settled, f"the build settled through the second server: {log}")
        async with wd.side_store() as jobs:
            done = await jobs.get(build)
        assert done.error is None, (done.error, log.read_text()[-3000:])
        outputs = [p.read_bytes() for p in built.iterdir() if p.suffix != ".started"]
        assert [(wd.results_dir / build / "disk.qcow2").read_bytes()] == outputs
        text = log.read_text()
        switches = [line for line in text.splitlines() if "switching to the next" in line]
        assert switches and all(closed in line and "/jobs/" not in line for line in switches), switches
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(90):
                await proc.wait()
    assert proc.returncode == 0, log.read_text()[-3000:]
