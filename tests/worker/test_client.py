"""``osbuildd worker`` as a subprocess against a real ``osbuildd serve`` (``[builder] local_executor =
false``) over its worker API on 127.0.0.1 with TLS + mTLS (certificates from ``osbuildd gen-certs``),
or with OAuth2 bearer tokens from a token endpoint of the test's own. The worker runs
tests/worker/client_fake_osbuild.py as osbuild (osbuild's recorded monitor stream, then an artifact
of random bytes it also copies aside), so what a compose downloads can be compared with what the
worker built. Composes are made through the daemon's Weldr socket and its Cloud API (a unix listener).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import ssl
import sys
import tarfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import tomli_w
from aiohttp import web
from cloud.cloud_daemon import Client
from cloud.tlsutil import JWKSServer, SigningKey, gen_certs, token
from foundation.daemon_helpers import NotifySocket, daemon_env, free_port
from testdata import OSBUILD

import osbuildd.distro as distros
from osbuildd.compose.cloud.request import API_TO_INTERNAL
from osbuildd.runner.cleanup import mounts_under, processes_marked

REPO = Path(__file__).resolve().parents[2]
FAKE = Path(__file__).resolve().parent / "client_fake_osbuild.py"
LIMIT = 300.0   # hang guard for a compose through its jobs, not a timing assertion
BP = {"name": "worker-tiny", "version": "0.0.1", "packages": []}


def share(state: Path, shared: Path, names: tuple[str, ...] = ("cache", "store")) -> None:
    state.mkdir(parents=True, exist_ok=True)
    for name in names:
        if not (state / name).exists():
            os.symlink(shared / name, state / name)


def filename_of(distro: str, image_type: str) -> str:
    return distros.get(distro).arch("x86_64").image_type(image_type).filename


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gen_certs(tmp_path_factory.mktemp("certs"))


# -- the composer -------------------------------------------------------------------------------

@dataclass
class Composer:
    tmp: Path
    config: Path
    state: Path
    run: Path
    port: int
    proc: asyncio.subprocess.Process | None = None
    notify: NotifySocket | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    @property
    def log(self) -> Path:
        return self.tmp / f"daemon-{self.starts}.log"

    async def start(self) -> None:
        self.starts += 1
        self.notify = NotifySocket(self.tmp / f"notify-{self.starts}.sock")
        with await asyncio.to_thread(open, self.log, "wb") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "osbuildd.cli", "serve", "--config", str(self.config), "--composer-config", "",
                cwd=REPO, env=daemon_env(REPO, self.notify), stdout=err, stderr=err)
        await self.notify.wait_for("READY=1", self.proc)

    async def stop(self) -> int:
        assert self.proc is not None and self.notify is not None
        if self.proc.returncode is None:
            self.proc.terminate()
            async with asyncio.timeout(90):
                await self.proc.wait()
        self.notify.close()
        return self.proc.returncode or 0

    @asynccontextmanager
    async def weldr(self) -> AsyncIterator[Client]:
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(self.run / "weldr.socket")),
                                         timeout=aiohttp.ClientTimeout(total=600)) as s:
            yield Client(s)

    @asynccontextmanager
    async def cloud(self) -> AsyncIterator[Client]:
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(self.run / "cloud.sock")),
                                         timeout=aiohttp.ClientTimeout(total=600)) as s:
            yield Client(s)


@asynccontextmanager
async def composer(tmp: Path, certs: Path, shared: Path, cloud: dict[str, Any] | None = None,
                   **worker_api: Any) -> AsyncIterator[Composer]:
    state, run = tmp / "state", tmp / "run"
    share(state, shared)
    run.mkdir(parents=True, exist_ok=True)
    port = free_port()
    section = {"listen": f"127.0.0.1:{port}", "cert": str(certs / "composer-crt.pem"),
               "key": str(certs / "composer-key.pem"), "ca": str(certs / "ca-crt.pem"),
               "allowed_domains": ["localhost", "worker"], "job_timeout": 60.0, "job_watch_interval": 2.0,
               **worker_api}
    config = tmp / "osbuildd.toml"
    config.write_text(tomli_w.dumps({
        "state_dir": str(state), "log_format": "json", "weldr": {"socket": str(run / "weldr.socket")},
        "cloud": cloud or {"listen": f"unix:{run}/cloud.sock"}, "worker_api": section,
        "builder": {"local_executor": False}}))
    c = Composer(tmp, config, state, run, port)
    await c.start()
    try:
        yield c
    finally:
        rc = await c.stop()
    assert rc == 0, c.log.read_text()


# -- the worker ---------------------------------------------------------------------------------

@dataclass
class WorkerProc:
    tmp: Path
    name: str
    artifact: str
    mode: str = "build"
    delay: float = 0.02
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def state(self) -> Path:
        return self.tmp / self.name

    @property
    def built(self) -> Path:
        return self.tmp / f"{self.name}-built"

    @property
    def log(self) -> Path:
        return self.tmp / f"{self.name}-{self.starts}.log"

    async def start(self, *args: str) -> None:
        self.starts += 1
        self.built.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, PYTHONPATH=str(REPO), CLIENT_FAKE_NOTES=str(OSBUILD), CLIENT_FAKE_ARTIFACT=self.artifact,
                   CLIENT_FAKE_COPY_DIR=str(self.built), CLIENT_FAKE_MODE=self.mode, CLIENT_FAKE_DELAY=str(self.delay),
                   **self.extra_env)
        with await asyncio.to_thread(open, self.log, "wb") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "osbuildd.cli", "worker", "--state-dir", str(self.state),
                "--store", str(self.tmp / f"{self.name}-store"), "--osbuild", str(FAKE), "--poll-interval", "1",
                "--config", str(self.tmp / "osbuild-worker.toml"), *args,
                cwd=REPO, env=env, stdout=err, stderr=err)

    async def stop(self) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(90):
                await self.proc.wait()
        return self.proc.returncode or 0

    def outputs(self) -> list[bytes]:
        return [p.read_bytes() for p in sorted(self.built.iterdir()) if p.suffix != ".started"]

    def started(self) -> int:
        return len(list(self.built.glob("*.started")))


def mtls_args(c: Composer, certs: Path) -> list[str]:
    return ["--composer", c.url, "--cert", str(certs / "worker-crt.pem"), "--key", str(certs / "worker-key.pem"),
            "--ca", str(certs / "ca-crt.pem")]


def worker_toml(tmp: Path, data: dict[str, Any] | None = None) -> None:
    (tmp / "osbuild-worker.toml").write_text(tomli_w.dumps(data or {"base_path": "/api/worker/v1"}))


async def until(pred: Any, what: str, within: float = LIMIT) -> Any:
    async with asyncio.timeout(within):
        while True:
            got = pred()
            if asyncio.iscoroutine(got):
                got = await got
            if got:
                return got
            await asyncio.sleep(0.2)
    raise AssertionError(what)


async def weldr_status(c: Composer, cid: str) -> str:
    async with c.weldr() as w:
        r = await w.get(f"/api/v1/compose/status/{cid}")
        return str(r.json()["uuids"][0]["queue_status"])


async def weldr_compose(c: Composer, compose_type: str = "tar") -> str:
    async with c.weldr() as w:
        assert (await w.post("/api/v1/blueprints/new", BP)).status == 200
        r = await w.post("/api/v1/compose", {"blueprint_name": BP["name"], "compose_type": compose_type,
                                             "branch": "master"})
        assert r.status == 200, r.body
        return str(r.json()["build_id"])


async def finished(c: Composer, cid: str) -> str:
    async def done() -> str | None:
        s = await weldr_status(c, cid)
        return s if s in ("FINISHED", "FAILED") else None
    return str(await until(done, f"compose {cid} settled"))


def leftovers(w: WorkerProc) -> dict[str, Any]:
    builds = w.state / "builds"
    return {"processes": processes_marked(w.state), "mounts": mounts_under([w.state, w.tmp / f"{w.name}-store"]),
            "builds": sorted(os.listdir(builds)) if builds.is_dir() else [],
            "tmp": sorted(os.listdir(w.state / "tmp")) if (w.state / "tmp").is_dir() else []}


NOTHING = {"processes": {}, "mounts": [], "builds": [], "tmp": []}


def monitor_messages() -> list[str]:
    """The status lines of osbuild's recorded monitor stream (the fake replays it)."""
    out = []
    for raw in (OSBUILD / "osbuild-monitor-sample.jsonseq").read_bytes().split(b"\n"):
        raw = raw.lstrip(b"\x1e").strip()
        if raw:
            msg = json.loads(raw).get("message") or ""
            if msg.startswith("Starting module"):
                out.append(msg.strip())
    return out


# -- the tests ----------------------------------------------------------------------------------

async def test_weldr_compose_built_by_the_worker(tmp_path: Path, certs: Path, shared_state_dir: Path) -> None:
    worker_toml(tmp_path)
    w = WorkerProc(tmp_path, "w1", filename_of(distros.host(), "tar"))
    async with composer(tmp_path / "composer", certs, shared_state_dir) as c:
        await w.start(*mtls_args(c, certs))
        try:
            cid = await weldr_compose(c)
            assert await finished(c, cid) == "FINISHED", c.log.read_text()[-3000:]
            async with c.weldr() as weldr:
                image = await weldr.get(f"/api/v1/compose/image/{cid}")
                logs = await weldr.get(f"/api/v1/compose/logs/{cid}")
            assert image.status == 200
            assert w.outputs() == [image.body]   # the artifact the worker built, byte for byte
            with tarfile.open(fileobj=io.BytesIO(logs.body)) as tar:
                member = next(m for m in tar.getmembers() if m.name.endswith("osbuild.log"))
                text = tar.extractfile(member).read().decode()  # type: ignore[union-attr]
            # the monitor's lines reach the composer only through the worker's partial updates
            assert all(m in text for m in monitor_messages()), text[:2000]
            await until(lambda: leftovers(w) == NOTHING and not list((w.state / "pending").iterdir()),
                        "the worker's build dir, pending result and processes gone", 60)
        finally:
            assert await w.stop() == 0, w.log.read_text()


async def test_cancel_stops_the_remote_build(tmp_path: Path, certs: Path, shared_state_dir: Path) -> None:
    worker_toml(tmp_path)
    w = WorkerProc(tmp_path, "w1", filename_of(distros.host(), "tar"), mode="hang")
    async with composer(tmp_path / "composer", certs, shared_state_dir) as c:
        await w.start(*mtls_args(c, certs))
        try:
            cid = await weldr_compose(c)
            await until(lambda: w.started() and processes_marked(w.state), "the worker's build running")
            async with c.weldr() as weldr:
                r = await weldr.request("DELETE", f"/api/v1/compose/cancel/{cid}")
                assert r.status == 200, r.body
            await until(lambda: leftovers(w) == NOTHING, "the build stopped and cleaned up on the worker", 60)
            assert w.proc is not None and w.proc.returncode is None   # the worker goes on
            assert await weldr_status(c, cid) == "FAILED"
            assert w.outputs() == []
        finally:
            assert await w.stop() == 0, w.log.read_text()


CLOUD_BODY = {"distribution": "debian-12", "customizations": {"packages": ["tmux"]},
              "image_request": {"architecture": "x86_64", "image_type": "guest-image",
                                "repositories": [{"baseurl": "http://deb.debian.org/debian"}],
                                "upload_targets": [{"type": "local", "upload_options": {}}]}}


async def test_cloud_compose_depsolved_by_the_worker(tmp_path: Path, certs: Path, shared_state_dir: Path) -> None:
    worker_toml(tmp_path)
    w = WorkerProc(tmp_path, "w1", filename_of("debian-12", API_TO_INTERNAL["guest-image"]))
    share(w.state, shared_state_dir, ("cache",))   # the run's apt metadata for the depsolve
    body = CLOUD_BODY
    async with composer(tmp_path / "composer", certs, shared_state_dir) as c:
        async with c.cloud() as cloud:
            r = await cloud.post("/api/image-builder-composer/v2/compose", body)
            assert r.status == 201, r.body
            cid = r.json()["id"]
            r = await cloud.get(f"/api/image-builder-composer/v2/composes/{cid}")
            assert r.json()["status"] == "pending"   # nothing depsolves in the composer
            await w.start(*mtls_args(c, certs))
            try:
                async def settled() -> Any:
                    r = await cloud.get(f"/api/image-builder-composer/v2/composes/{cid}")
                    s = r.json()
                    return s if s["status"] in ("success", "failure") else None
                status = await until(settled, "the cloud compose settled")
                assert status["status"] == "success", status
                assert "compute job taken" in w.log.read_text()
                manifests = await cloud.get(f"/api/image-builder-composer/v2/composes/{cid}/manifests")
                sources = json.dumps(manifests.json()["manifests"][0].get("sources") or {})
                assert "tmux" in sources   # the worker's depsolve result made the manifest
            finally:
                assert await w.stop() == 0, w.log.read_text()
        async with c.weldr() as weldr:
            image = await weldr.get(f"/api/v1/compose/image/{cid}")
        assert w.outputs() == [image.body]


async def test_result_survives_a_composer_and_worker_restart(tmp_path: Path, certs: Path,
                                                             shared_state_dir: Path) -> None:
    worker_toml(tmp_path)
    w = WorkerProc(tmp_path, "w1", filename_of(distros.host(), "tar"), delay=0.1)
    async with composer(tmp_path / "composer", certs, shared_state_dir) as c:
        await w.start(*mtls_args(c, certs))
        cid = await weldr_compose(c)
        await until(w.started, "the worker's build started")
        assert await c.stop() == 0, c.log.read_text()   # the composer goes away mid-build
        await until(lambda: list((w.state / "pending").glob("*.json")), "the result kept on the worker's disk")
        assert await w.stop() == 0, w.log.read_text()   # and the worker restarts as well
        assert list((w.state / "pending").glob("*.json"))
        await c.start()
        await w.start(*mtls_args(c, certs))
        try:
            assert await finished(c, cid) == "FINISHED", (c.log.read_text()[-3000:], w.log.read_text()[-3000:])
            async with c.weldr() as weldr:
                image = await weldr.get(f"/api/v1/compose/image/{cid}")
            assert w.outputs() == [image.body]
            await until(lambda: not list((w.state / "pending").iterdir()), "the delivered result forgotten", 60)
        finally:
            assert await w.stop() == 0, w.log.read_text()


async def test_sigterm_stops_the_build_and_exits_0(tmp_path: Path, certs: Path, shared_state_dir: Path) -> None:
    worker_toml(tmp_path)
    w = WorkerProc(tmp_path, "w1", filename_of(distros.host(), "tar"), mode="hang")
    async with composer(tmp_path / "composer", certs, shared_state_dir) as c:
        await w.start(*mtls_args(c, certs))
        cid = await weldr_compose(c)
        await until(lambda: w.started() and processes_marked(w.state), "the worker's build running")
        assert await w.stop() == 0, w.log.read_text()
        assert leftovers(w) == NOTHING
        assert await weldr_status(c, cid) == "RUNNING"   # the composer requeues it once its heartbeat stops


async def test_restarted_worker_cleans_what_a_sigkill_left(tmp_path: Path, certs: Path,
                                                         shared_state_dir: Path) -> None:
    """SIGKILL mid-build leaves the engine's processes and the build dir; the restarted worker
    kills and removes them, and (the composer requeued the silent job) builds it again."""
    worker_toml(tmp_path)
    w = WorkerProc(tmp_path, "w1", filename_of(distros.host(), "tar"), mode="hang")
    async with composer(tmp_path / "composer", certs, shared_state_dir, job_timeout=5.0, job_watch_interval=1.0) as c:
        await w.start(*mtls_args(c, certs))
        cid = await weldr_compose(c)
        left = await until(lambda: w.started() and processes_marked(w.state), "the worker's build running")
        assert w.proc is not None
        w.proc.kill()
        await w.proc.wait()
        assert set(processes_marked(w.state)) >= set(left)   # still running without their worker
        assert os.listdir(w.state / "builds")
        w.mode = "build"
        await w.start(*mtls_args(c, certs))
        try:
            await until(lambda: not set(processes_marked(w.state)) & set(left), "the old build's processes killed", 60)
            assert await finished(c, cid) == "FINISHED", (c.log.read_text()[-3000:], w.log.read_text()[-3000:])
            async with c.weldr() as weldr:
                image = await weldr.get(f"/api/v1/compose/image/{cid}")
            assert w.outputs() == [image.body]
            await until(lambda: leftovers(w) == NOTHING, "nothing left on the worker", 60)
        finally:
            assert await w.stop() == 0, w.log.read_text()


async def test_s3_upload_with_the_workers_credentials(tmp_path: Path, certs: Path, shared_state_dir: Path) -> None:
    """A Weldr compose uploading to S3 with no credentials of its own: the worker uploads with the
    [aws] credentials of its osbuild-worker.toml (moto as S3)."""
    moto = os.environ.get("OSBUILDD_TEST_MOTO")
    if not moto:
        pytest.fail("OSBUILDD_TEST_MOTO is not set: run the suite with `make test` (scripts/test-servers.sh)")
    import boto3
    bucket = f"worker-{tmp_path.name.lower()[-20:].strip('_-')}".replace("_", "-")
    s3 = boto3.client("s3", endpoint_url=moto, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="worker-s3-secret")
    s3.create_bucket(Bucket=bucket)
    ini = tmp_path / "aws-credentials"
    ini.write_text("[default]\naws_access_key_id = testing\naws_secret_access_key = worker-s3-secret\n")
    worker_toml(tmp_path, {"aws": {"credentials": str(ini), "s3_endpoint": moto}})
    filename = filename_of(distros.host(), "tar")
    w = WorkerProc(tmp_path, "w1", filename)
    async with composer(tmp_path / "composer", certs, shared_state_dir) as c:
        await w.start(*mtls_args(c, certs))
        try:
            async with c.weldr() as weldr:
                assert (await weldr.post("/api/v1/blueprints/new", BP)).status == 200
                r = await weldr.post("/api/v1/compose", {
                    "blueprint_name": BP["name"], "compose_type": "tar", "branch": "master",
                    "upload": {"image_name": "worker-s3", "provider": "aws.s3",
                               "settings": {"region": "us-east-1", "bucket": bucket, "key": "from-worker"}}})
                assert r.status == 200, r.body
                cid = str(r.json()["build_id"])
            assert await finished(c, cid) == "FINISHED", (c.log.read_text()[-3000:], w.log.read_text()[-3000:])
            obj = await asyncio.to_thread(s3.get_object, Bucket=bucket, Key=f"from-worker-{filename}")
            assert w.outputs() == [obj["Body"].read()]
        finally:
            assert await w.stop() == 0, w.log.read_text()


# -- OAuth2 --------------------------------------------------------------------------------------

@dataclass
class TokenEndpoint:
    """``POST /token`` as an SSO's: form-encoded grants; issues JWTs for tenant 000001, the first one
    under a key the composer does not know, the others under ``jwks``' key."""

    jwks: JWKSServer
    client_id: str
    secret: str
    ttl: int = 3600
    grants: list[dict[str, str]] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    async def _token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.grants.append({k: str(v) for k, v in form.items()})
        ok = form.get("client_id") == self.client_id and (
            (form.get("grant_type") == "client_credentials" and form.get("client_secret") == self.secret)
            or (form.get("grant_type") == "refresh_token" and form.get("refresh_token") == self.secret))
        if not ok:
            return web.json_response({"error": "invalid_client"}, status=401)
        # the first token is signed by a key the composer does not know: it answers 401
        key = SigningKey("unknown-key") if len(self.grants) == 1 else self.jwks.keys[0]
        return web.json_response({"access_token": token(key, tenant="000001", ttl=self.ttl),
                                  "token_type": "Bearer", "expires_in": self.ttl})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/token", self._token)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.mark.parametrize("grant", ["client_credentials", "refresh_token"])
async def test_oauth_worker_builds(tmp_path: Path, certs: Path, shared_state_dir: Path, grant: str) -> None:
    """A worker with bearer tokens of tenant 000001 takes that tenant's Cloud compose (its channel
    org-000001): the depsolve and the build."""
    jwks = JWKSServer(certs)
    await jwks.start()
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t-value\n")
    endpoint = TokenEndpoint(jwks, "osbuild-worker", "s3cr3t-value")
    await endpoint.start()
    # the OAuth settings from osbuild-worker.toml's [authentication], as upstream's worker reads them
    key = "client_secret" if grant == "client_credentials" else "offline_token"
    worker_toml(tmp_path, {"authentication": {"oauth_url": endpoint.url, "client_id": "osbuild-worker",
                                              key: str(secret)}})
    w = WorkerProc(tmp_path, "w1", filename_of("debian-12", API_TO_INTERNAL["guest-image"]))
    share(w.state, shared_state_dir, ("cache",))
    jwt = {"cert": str(certs / "composer-crt.pem"), "key": str(certs / "composer-key.pem"), "enable_mtls": False,
           "enable_jwt": True, "jwt_keys_urls": [jwks.url], "jwt_ca_file": str(certs / "ca-crt.pem")}
    cloud_port = free_port()
    ca = ssl.create_default_context(cafile=str(certs / "ca-crt.pem"))
    cloud_url = f"https://localhost:{cloud_port}/api/image-builder-composer/v2"
    try:
        async with composer(tmp_path / "composer", certs, shared_state_dir,
                            cloud={"listen": f"127.0.0.1:{cloud_port}", **jwt}, **jwt) as c, \
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ca)) as cloud:
            async def build(user: str) -> bytes:
                headers = {"Authorization": f"Bearer {user}"}
                async with cloud.post(f"{cloud_url}/compose", json=CLOUD_BODY, headers=headers) as r:
                    assert r.status == 201, await r.text()
                    cid = (await r.json())["id"]

                async def settled() -> Any:
                    async with cloud.get(f"{cloud_url}/composes/{cid}", headers=headers) as r:
                        s = await r.json()
                    return s if s["status"] in ("success", "failure") else None
                status = await until(settled, "the cloud compose settled")
                assert status["status"] == "success", (status, w.log.read_text()[-3000:])
                async with c.weldr() as weldr:
                    return (await weldr.get(f"/api/v1/compose/image/{cid}")).body

            await w.start("--composer", c.url, "--ca", str(certs / "ca-crt.pem"))
            try:
                image = await build(token(jwks.keys[0], tenant="000001"))
                assert w.outputs() == [image]
                # the first token was refused (401): one more was fetched, and it lasted (an hour)
                assert len(endpoint.grants) == 2
                assert all(g["grant_type"] == grant for g in endpoint.grants)
                assert "s3cr3t-value" not in w.log.read_text()
            finally:
                assert await w.stop() == 0, w.log.read_text()
    finally:
        await endpoint.stop()
        await jwks.stop()


# -- refusals of the command line ---------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["--bogus"],
    [],
    ["localhost:8700", "--composer", "https://localhost:8700"],
    ["--composer", "ftp://localhost"],
    ["--composer", "https://localhost:1", "--token-url", "https://sso/token"],
    ["--composer", "https://localhost:1", "--poll-interval", "0"],
    ["--composer", "https://localhost:1", "--config", "/nonexistent/osbuild-worker.toml"],
    ["--composer", "https://localhost:1", "--cert", "/nonexistent/crt.pem", "--key", "/nonexistent/key.pem"],
    ["--composer", "https://localhost:1", "--client-secret-file", "a", "--offline-token-file", "b"],
])
def test_bad_options_exit_2_with_one_line(tmp_path: Path, args: list[str]) -> None:
    import subprocess
    r = subprocess.run([sys.executable, "-m", "osbuildd.cli", "worker", "--state-dir", str(tmp_path / "s"), *args],
                       cwd=REPO, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=60)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("osbuildd worker: "), r.stderr
    assert not (tmp_path / "s").exists()   # refused before the state dir is touched


@pytest.mark.parametrize("text", ['base_path = 3\n', '[osbuild_executor]\ntype = "aws.ec2"\n', 'not toml ]\n'])
def test_bad_config_file_exits_2_with_one_line(tmp_path: Path, text: str) -> None:
    import subprocess
    (tmp_path / "w.toml").write_text(text)
    r = subprocess.run([sys.executable, "-m", "osbuildd.cli", "worker", "--composer", "https://localhost:1",
                        "--config", str(tmp_path / "w.toml")], cwd=REPO, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=60)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(tmp_path / "w.toml") in lines[0], r.stderr
