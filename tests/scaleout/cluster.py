"""Several ``osbuildd serve`` on one PostgreSQL database and ``osbuildd worker`` processes on loopback.

Each daemon has its own state dir (its depsolve cache and engine store the run's warm ones), Weldr
socket, ``unix:`` Cloud API listener and worker API on its own 127.0.0.1 port (TLS + mTLS with
``osbuildd gen-certs`` certificates), builds nothing itself (``local_executor = false``), and shares
``[database] url`` and ``[results] dir`` with the others. Every worker is given every daemon's
worker API address and the run's shared engine store. A daemon restarted after a SIGKILL keeps its
config; each start writes a log of its own (``daemon-<n>.log``), so a killed daemon's log survives.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import tomli_w
from cloud.cloud_daemon import share_cache
from cloud.tlsutil import client_context, serve, stop
from foundation.daemon_helpers import NotifySocket, free_port, unix_call
from worker_api.wdaemon import BASE, mtls_worker

REPO = Path(__file__).resolve().parents[2]
JOB_TIMEOUT = 20.0       # a remote job whose token was not polled this long is requeued


@dataclass
class Node:
    """One ``osbuildd serve``."""
    index: int
    root: Path
    config: Path
    port: int
    weldr_sock: Path
    certs: Path
    proc: asyncio.subprocess.Process | None = None
    notify: NotifySocket | None = None
    logs: list[Path] = field(default_factory=list)
    up: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    async def start(self) -> None:
        self.proc, self.notify, log = await serve(self.config, self.root, log_name=f"daemon-{len(self.logs)}.log")
        self.logs.append(log)
        await self.notify.wait_for("READY=1", self.proc)
        self.up.set()

    async def kill9(self) -> None:
        assert self.proc is not None and self.proc.returncode is None
        self.up.clear()
        self.proc.kill()
        await self.proc.wait()
        if self.notify is not None:
            self.notify.close()
            self.notify = None

    async def stop(self) -> int:
        rc = await stop(self.proc) if self.proc is not None else 0
        if self.notify is not None:
            self.notify.close()
        return rc

    def alive(self) -> bool:
        """Running and past READY=1 (a restarting daemon has a process before it has a socket)."""
        return self.up.is_set() and self.proc is not None and self.proc.returncode is None

    def log_text(self) -> str:
        return "".join(f"=== {p.name} ===\n{p.read_text(errors='replace')}" for p in self.logs)

    def session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(self.weldr_sock)),
                                     timeout=aiohttp.ClientTimeout(total=600))

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """A Weldr request; the answer's JSON (or its bytes)."""
        return await unix_call(self.weldr_sock, method, path, body)

    async def leader(self) -> int:
        """This daemon's ``osbuildd_leader`` gauge (its worker listener's /metrics, the worker cert)."""
        ctx = client_context(self.certs, "worker")
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx),
                                         timeout=aiohttp.ClientTimeout(total=30)) as s, \
                s.get(self.url + "/metrics") as r:
            text = await r.text()
            assert r.status == 200, text[:500]
        values = [line.split()[1] for line in text.splitlines() if line.startswith("osbuildd_leader ")]
        assert len(values) == 1, text[:2000]
        return int(float(values[0]))


@dataclass
class WorkerProc:
    """One ``osbuildd worker`` given every daemon's address."""
    index: int
    state: Path
    log: Path
    argv: list[str]
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0

    async def start(self) -> None:
        self.starts += 1
        env = dict(os.environ, PYTHONPATH=str(REPO))
        env.pop("OSBUILDD_CONFIG", None)
        env.pop("NOTIFY_SOCKET", None)
        with await asyncio.to_thread(open, self.log, "ab") as f:
            f.write(f"\n=== start {self.starts} ===\n".encode())
            f.flush()
            self.proc = await asyncio.create_subprocess_exec(*self.argv, cwd=REPO, env=env, stdout=f, stderr=f)

    async def kill9(self) -> None:
        assert self.proc is not None and self.proc.returncode is None
        self.proc.kill()
        await self.proc.wait()

    async def stop(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.returncode is None:
            self.proc.terminate()
            async with asyncio.timeout(120):
                await self.proc.wait()
        return self.proc.returncode or 0

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Cluster:
    nodes: list[Node]
    workers: list[WorkerProc]
    results: Path
    pg_url: str

    def logs(self) -> str:
        return "\n".join([f"##### daemon {n.index}\n{n.log_text()}" for n in self.nodes]
                         + [f"##### worker {w.index}\n{w.log_text()}" for w in self.workers])

    def events(self, event: str, job_id: str) -> list[dict[str, Any]]:
        """Every daemon's (every start's) JSON log lines of ``event`` for ``job_id``."""
        out = []
        for n in self.nodes:
            for line in n.log_text().splitlines():
                if not line.startswith("{"):
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("event") == event and entry.get("job_id") == job_id:
                    out.append(entry)
        return out


def node_config(root: Path, index: int, certs: Path, pg_url: str, results: Path, shared_state_dir: Path) -> Node:
    state, run = root / "state", root / "run"
    share_cache(state, shared_state_dir)
    run.mkdir(parents=True, exist_ok=True)
    port = free_port()
    data = {"state_dir": str(state), "log_format": "json", "log_level": "debug",
            "weldr": {"socket": str(run / "weldr.socket")}, "cloud": {"listen": f"unix:{run}/cloud.sock"},
            "worker_api": {"listen": f"127.0.0.1:{port}",
                           **mtls_worker(certs, request_job_timeout=5, job_timeout=JOB_TIMEOUT,
                                         job_watch_interval=2.0)},
            "builder": {"local_executor": False}, "database": {"url": pg_url}, "results": {"dir": str(results)}}
    config = root / "osbuildd.toml"
    config.write_text(tomli_w.dumps(data))
    return Node(index, root, config, port, run / "weldr.socket", certs)


def worker_proc(root: Path, index: int, certs: Path, addresses: list[str], store: Path) -> WorkerProc:
    state = root / "state"
    state.mkdir(parents=True, exist_ok=True)
    toml = root / "osbuild-worker.toml"
    toml.write_text(tomli_w.dumps({"base_path": BASE}))   # not the host's /etc/osbuild-worker
    argv = [sys.executable, "-m", "osbuildd.cli", "worker", "--composer", ",".join(addresses),
            "--cert", str(certs / "worker-crt.pem"), "--key", str(certs / "worker-key.pem"),
            "--ca", str(certs / "ca-crt.pem"), "--state-dir", str(state), "--store", str(store),
            "--poll-interval", "2", "--config", str(toml)]
    return WorkerProc(index, state, root / "worker.log", argv)


@asynccontextmanager
async def cluster(tmp_path: Path, certs: Path, pg_url: str, shared_state_dir: Path,
                  daemons: int = 3, workers: int = 3) -> AsyncIterator[Cluster]:
    results = tmp_path / "results"
    results.mkdir()
    nodes = [node_config(tmp_path / f"daemon{i}", i, certs, pg_url, results, shared_state_dir) for i in range(daemons)]
    c = Cluster(nodes, [], results, pg_url)
    try:
        await asyncio.gather(*(n.start() for n in nodes))
        addresses = [n.url for n in nodes]
        for i in range(workers):
            w = worker_proc(tmp_path / f"worker{i}", i, certs, addresses, shared_state_dir / "store")
            await w.start()
            c.workers.append(w)
        yield c
    finally:
        for w in c.workers:
            await w.stop()
        for n in nodes:
            await n.stop()
