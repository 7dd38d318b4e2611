"""``osbuildd serve`` with its worker API on a TCP port over TLS (mTLS with ``osbuildd gen-certs``
certificates, or JWT), its Weldr socket and a ``unix:`` Cloud API listener, and a small worker-API
client as a remote worker would use (tests/cloud/tlsutil.py makes the certificates and contexts).

A test that needs jobs nobody serves to workers (the manifest job, while the daemon builds nothing:
``local_executor = false``) runs them through ``side_store()``: a second connection to the daemon's
job store, as tests/cloud/test_status.py does.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import tomli_w
from cloud.cloud_daemon import Client, share_cache
from cloud.tlsutil import client_context, serve, stop
from foundation.daemon_helpers import free_port

from osbuildd.queue import Database, JobStore

BASE = "/api/worker/v1"
CLOUD = "/api/image-builder-composer/v2"
WORKER_DOMAINS = ["localhost"]     # gen-certs' worker certificate: CN=localhost (its client one is not)


def mtls_worker(certs: Path, **overrides: Any) -> dict[str, Any]:
    return {"cert": str(certs / "composer-crt.pem"), "key": str(certs / "composer-key.pem"),
            "ca": str(certs / "ca-crt.pem"), "allowed_domains": WORKER_DOMAINS, **overrides}


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class WorkerClient:
    """Requests to the worker API at ``url`` (``https://localhost:<port>``) with one TLS context."""

    def __init__(self, url: str, ssl_context: ssl.SSLContext | bool, headers: Mapping[str, str] | None = None) -> None:
        self.url = url
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_context), headers=headers,
                                             timeout=aiohttp.ClientTimeout(total=300))

    async def close(self) -> None:
        await self.session.close()

    async def request(self, method: str, path: str, obj: Any = None, *, data: Any = None,
                      headers: Mapping[str, str] | None = None) -> Reply:
        hdrs = dict(headers or {})
        if obj is not None:
            data = json.dumps(obj)
            hdrs.setdefault("Content-Type", "application/json")
        async with self.session.request(method, self.url + path, data=data, headers=hdrs) as r:
            return Reply(r.status, r.headers, await r.read())

    async def register(self, arch: str = "x86_64") -> str:
        r = await self.request("POST", f"{BASE}/workers", {"arch": arch})
        assert r.status == 201, r.body
        return str(r.json()["worker_id"])

    async def take(self, types: list[str], arch: str = "x86_64", worker_id: str | None = None) -> Reply:
        body: dict[str, Any] = {"types": types, "arch": arch}
        if worker_id is not None:
            body["worker_id"] = worker_id
        return await self.request("POST", f"{BASE}/jobs", body)


@dataclass
class WorkerDaemon:
    port: int
    certs: Path
    state: Path
    log: Path
    weldr: Client
    cloud: Client
    config: Path
    jwt: bool = False
    results: Path | None = None    # [results] dir when set, else <state>/results

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    @property
    def results_dir(self) -> Path:
        return self.results if self.results is not None else self.state / "results"

    @property
    def uploads(self) -> Path:
        """Where a running job's artifact uploads are staged: ``<results_dir>/.uploads``."""
        return self.results_dir / ".uploads"

    def client(self, name: str | None = "worker", *, ssl_context: ssl.SSLContext | None = None,
               headers: Mapping[str, str] | None = None) -> WorkerClient:
        ctx = ssl_context if ssl_context is not None else client_context(self.certs, name)
        return WorkerClient(self.url, ctx, headers)

    @asynccontextmanager
    async def side_store(self) -> AsyncIterator[JobStore]:
        db = await Database.open(self.state / "osbuildd.db")
        try:
            yield JobStore(db, state_dir=self.state)
        finally:
            await db.close()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def error_of(r: Reply, status: int, error_id: int) -> dict[str, Any]:
    """``r`` is a worker API error in upstream's shape with this status and id."""
    assert r.status == status, (r.status, r.body[:500])
    body = r.json()
    assert body["kind"] == "Error" and body["id"] == str(error_id), body
    assert body["code"] == f"IMAGE-BUILDER-WORKER-{error_id}" and body["href"] == f"{BASE}/errors/{error_id}", body
    assert body["message"] == body["reason"] and body["operation_id"], body
    return dict(body)


@asynccontextmanager
async def worker_daemon(tmp_path: Path, certs: Path, worker_api: dict[str, Any], *,
                        shared_state_dir: Path | None = None, builder: dict[str, Any] | None = None,
                        **extra: Any) -> AsyncIterator[WorkerDaemon]:
    """``osbuildd serve`` with ``[worker_api]`` = ``worker_api`` on a free 127.0.0.1 port."""
    port = free_port()
    state, run = tmp_path / "state", tmp_path / "run"
    run.mkdir(parents=True, exist_ok=True)
    if shared_state_dir is not None:
        share_cache(state, shared_state_dir)
    data = {"state_dir": str(state), "log_format": "json", "weldr": {"socket": str(run / "weldr.socket")},
            "cloud": {"listen": f"unix:{run}/cloud.sock"},
            "worker_api": {"listen": f"127.0.0.1:{port}", **worker_api},
            "builder": builder if builder is not None else {"local_executor": False}, **extra}
    config = tmp_path / "osbuildd.toml"
    config.write_text(tomli_w.dumps(data))
    proc, notify, log = await serve(config, tmp_path)
    try:
        await notify.wait_for("READY=1", proc)
        timeout = aiohttp.ClientTimeout(total=600)
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(run / "weldr.socket")),
                                         timeout=timeout) as w, \
                aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(run / "cloud.sock")),
                                      timeout=timeout) as c:
            results = (extra.get("results") or {}).get("dir")
            yield WorkerDaemon(port, certs, state, log, Client(w), Client(c), config,
                               jwt=bool(worker_api.get("enable_jwt")), results=Path(results) if results else None)
    finally:
        rc = await stop(proc)
        notify.close()
    assert rc == 0, log.read_text()
