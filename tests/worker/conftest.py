"""The multi-host cluster of the remote-worker tests (tests/worker/test_remote_*.py), one per session.

- ``hosts`` (session): the namespaces of tests/worker/netns.py (composer + 2 workers), deleted at the end
  (also after a failure: finalizer), stale ones of dead runs removed first; the HTTP proxy to the
  Debian mirror in the root namespace (every process gets ``http_proxy``).
- ``cluster`` (session): ``osbuildd serve`` in the composer namespace (``[builder] local_executor = false``,
  ``[worker_api]`` over TLS + mTLS on ``10.213.0.1:8700`` with ``osbuildd gen-certs`` certificates,
  ``allowed_domains`` = the worker certificate's names, ``job_timeout`` 25 s checked every 2 s), its
  Weldr socket and a ``unix:`` Cloud API listener reachable from the test (root namespace); two
  ``osbuildd worker`` processes, one per worker namespace, each with its own state dir and the run's
  shared engine store and depsolve cache (tests/warmstore.py). ``Cluster.weldr`` / ``.cloud`` are
  HTTP-over-unix clients made per call (each test has its own event loop).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import tomli_w
from foundation.daemon_helpers import unix_call

from .netns import COMPOSER_ADDR, Hosts, Proc

REPO = Path(__file__).resolve().parents[2]
PORT = 8700
WORKER_BASE = "/api/worker/v1"
CLOUD = "/api/image-builder-composer/v2"
JOB_TIMEOUT = 25.0          # the composer requeues a remote job whose token was not polled this long
STARTUP_LIMIT = 90.0        # hang guards, not timing assertions


def _env(hosts: Hosts) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), **hosts.proxy_env)
    env.pop("OSBUILDD_CONFIG", None)
    env.pop("NOTIFY_SOCKET", None)
    return env


def _share(state: Path, shared: Path) -> None:
    """``state``'s store/ and cache/ are the run's warm ones (no Debian package fetched twice)."""
    state.mkdir(parents=True, exist_ok=True)
    for name in ("cache", "store"):
        if not (state / name).exists():
            os.symlink(shared / name, state / name)


def _wait_ready(sock: socket.socket, proc: Proc) -> None:
    deadline = time.monotonic() + STARTUP_LIMIT
    sock.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            msg = sock.recv(4096).decode()
        except TimeoutError:
            if not proc.alive():
                raise AssertionError(f"composer exited {proc.popen.returncode}:\n{proc.log_text()[-4000:]}") from None
            continue
        if any(line.startswith("READY=1") for line in msg.splitlines()):
            return
    raise AssertionError(f"composer not ready after {STARTUP_LIMIT} s:\n{proc.log_text()[-4000:]}")


@dataclass
class Worker:
    index: int                 # 1-based; its namespace is hosts.worker(index)
    state: Path
    log: Path
    proc: Proc | None = None
    starts: int = 0

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""


@dataclass
class Cluster:
    hosts: Hosts
    root: Path
    certs: Path
    state: Path                # the composer's state dir
    weldr_sock: Path
    cloud_sock: Path
    composer: Proc
    workers: list[Worker] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://{COMPOSER_ADDR}:{PORT}"

    # -- workers --------------------------------------------------------------------------------

    def worker_argv(self, w: Worker) -> list[str]:
        return [sys.executable, "-m", "osbuildd.cli", "worker", "--composer", self.url,
                "--cert", str(self.certs / "worker-crt.pem"), "--key", str(self.certs / "worker-key.pem"),
                "--ca", str(self.certs / "ca-crt.pem"), "--state-dir", str(w.state),
                "--store", str(w.state / "store"), "--config", str(w.state.parent / "osbuild-worker.toml")]

    def start_worker(self, w: Worker) -> Proc:
        w.starts += 1
        with open(w.log, "ab") as f:
            f.write(f"\n=== start {w.starts} ===\n".encode())
        w.proc = self.hosts.start(f"worker{w.index}", self.hosts.worker(w.index), self.worker_argv(w), w.log,
                                  env=_env(self.hosts), cwd=REPO)
        return w.proc

    # -- the composer's APIs (root namespace, unix sockets) -------------------------------------

    def session(self, api: str) -> aiohttp.ClientSession:
        path = self.weldr_sock if api == "weldr" else self.cloud_sock
        return aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(path)),
                                     timeout=aiohttp.ClientTimeout(total=600))

    async def call(self, api: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return await unix_call(self.weldr_sock if api == "weldr" else self.cloud_sock, method, path, body)

    # -- the composer's job store, read-only ----------------------------------------------------

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        db = sqlite3.connect(f"file:{self.state / 'osbuildd.db'}?mode=ro", uri=True, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()

    def job(self, job_id: str) -> sqlite3.Row:
        rows = self.rows("SELECT * FROM jobs WHERE id = ?", (job_id,))
        assert rows, f"no job {job_id}"
        return rows[0]


def _composer_config(root: Path, certs: Path, shared: Path) -> tuple[Path, Path, Path, Path]:
    state, run = root / "composer" / "state", root / "composer" / "run"
    _share(state, shared)
    run.mkdir(parents=True, exist_ok=True)
    data = {
        "state_dir": str(state), "log_format": "json", "log_level": "debug",
        "weldr": {"socket": str(run / "weldr.socket")},
        "cloud": {"listen": f"unix:{run / 'cloud.sock'}"},
        "builder": {"local_executor": False},
        "worker_api": {
            "listen": f"{COMPOSER_ADDR}:{PORT}", "cert": str(certs / "composer-crt.pem"),
            "key": str(certs / "composer-key.pem"), "ca": str(certs / "ca-crt.pem"),
            "allowed_domains": ["localhost", "worker"], "job_timeout": JOB_TIMEOUT, "job_watch_interval": 2.0,
        },
    }
    config = root / "composer" / "osbuildd.toml"
    config.write_text(tomli_w.dumps(data))
    return config, state, run / "weldr.socket", run / "cloud.sock"


@pytest.fixture(scope="session")
def hosts(require_root: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosts]:
    h = Hosts(2)
    try:
        h.setup()
        h.start_proxy(tmp_path_factory.mktemp("proxy") / "proxy.log")
        yield h
    finally:
        h.close()


def _start_composer(hosts: Hosts, config: Path, log: Path, notify_path: Path) -> Proc:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify_path))
    try:
        env = dict(_env(hosts), NOTIFY_SOCKET=str(notify_path))
        proc = hosts.start("composer", hosts.composer,
                           [sys.executable, "-m", "osbuildd.cli", "serve", "--config", str(config),
                            "--composer-config", ""], log, env=env, cwd=REPO)
        _wait_ready(sock, proc)
        return proc
    finally:
        sock.close()


@pytest.fixture(scope="session")
def cluster(hosts: Hosts, shared_state_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    certs = root / "x509"
    subprocess.run([sys.executable, "-m", "osbuildd.cli", "gen-certs", str(certs), "--san", COMPOSER_ADDR],
                   cwd=REPO, env=_env(hosts), check=True, capture_output=True)
    config, state, weldr, cloud = _composer_config(root, certs, shared_state_dir)
    composer = _start_composer(hosts, config, root / "composer" / "daemon.log", root / "notify.sock")
    c = Cluster(hosts, root, certs, state, weldr, cloud, composer)
    try:
        for i in (1, 2):
            w = Worker(i, root / f"worker{i}" / "state", root / f"worker{i}" / "worker.log")
            _share(w.state, shared_state_dir)
            (w.state.parent / "osbuild-worker.toml").write_text("")   # not the host's /etc/osbuild-worker
            c.workers.append(w)
            c.start_worker(w)
        yield c
    finally:
        for w in c.workers:
            if w.proc is not None:
                w.proc.terminate(30)
        composer.terminate(60)
