"""``osbuildd serve`` on real sockets: start, answer, SIGTERM; socket activation via systemd-socket-activate."""

from __future__ import annotations

import asyncio
import signal
import stat
import sys
from pathlib import Path

import pytest
from conftest import need_tool

from osbuildd.queue import Database, JobStatus, JobStore, errors

from .daemon_helpers import NotifySocket, daemon_env, free_port, get_json, start_serve

STOP_LIMIT = 60.0


@pytest.fixture
def notify(tmp_path: Path):
    sock = NotifySocket(tmp_path / "notify.sock")
    yield sock
    sock.close()


async def _stop(proc: asyncio.subprocess.Process, sig: int = signal.SIGTERM) -> int:
    proc.send_signal(sig)
    async with asyncio.timeout(STOP_LIMIT):
        return await proc.wait()


async def test_serve_all_listeners_then_sigterm(tmp_path: Path, repo_root: Path, notify: NotifySocket) -> None:
    state = tmp_path / "state"
    run = tmp_path / "run"
    cloud_port, worker_port = free_port(), free_port()
    config = tmp_path / "osbuildd.toml"
    config.write_text(
        f'state_dir = "{state}"\n[weldr]\nsocket = "{run}/weldr/api.socket"\n'
        f'[cloud]\nlisten = "127.0.0.1:{cloud_port}"\nenable_tls = false\n'   # TLS: tests/cloud/test_tls.py
        f'[image_builder]\nlisten = "unix:{run}/ib.socket"\n'
        f'[worker_api]\nlisten = "127.0.0.1:{worker_port}"\nenable_tls = false\n')
    # a job left running by a "crashed" previous daemon, and a half-written artifact
    db = await Database.open(state / "osbuildd.db")
    store = await JobStore.open(db)
    build = await store.enqueue("osbuild:x86_64", {})
    await store.dequeue(["osbuild:x86_64"], timeout=0)
    await db.close()
    (state / "tmp").mkdir(parents=True)
    (state / "tmp" / "partial.qcow2").write_bytes(b"half")
    # a stale socket file nobody listens on is replaced
    (run / "weldr").mkdir(parents=True)
    stale = __import__("socket").socket(__import__("socket").AF_UNIX)
    stale.bind(str(run / "weldr" / "api.socket"))
    stale.close()

    proc = await start_serve(repo_root, config, notify, tmp_path / "daemon.log")
    try:
        ready = await notify.wait_for("READY=1", proc)
        assert f"MAINPID={proc.pid}" in ready
        weldr = run / "weldr" / "api.socket"
        assert stat.S_IMODE(weldr.stat().st_mode) == 0o660
        status, body = await get_json("http://localhost/api/status", unix=weldr)
        assert status == 200 and body["api"] == "1" and body["backend"] == "osbuild-composer"
        status, body = await get_json(f"http://127.0.0.1:{cloud_port}/api/image-builder-composer/v2/composes/")
        assert status == 200 and body == []   # a fresh state dir: no composes yet
        # the bare /ready needs no identity (a load balancer's probe); the API's own route does
        status, body = await get_json("http://localhost/ready", unix=run / "ib.socket")
        assert status == 200 and body == {"readiness": "ready"}
        status, body = await get_json(f"http://127.0.0.1:{worker_port}/api/worker/v1/status")
        assert status == 200 and body["kind"] == "Status"
        assert not (state / "tmp" / "partial.qcow2").exists()
    finally:
        rc = await _stop(proc)
    log = (tmp_path / "daemon.log").read_text()
    assert rc == 0, log
    assert "Traceback" not in log
    assert not weldr.exists() and not (run / "ib.socket").exists()
    assert any("STOPPING=1" in m for m in notify.drain())
    db = await Database.open(state / "osbuildd.db")
    try:
        assert await db.integrity_check() == "ok"
        job = await (await JobStore.open(db)).get(build)
        assert job.status == JobStatus.FINISHED and job.error.reason == errors.REASON_INTERRUPTED
    finally:
        await db.close()


async def test_sigint_exits_0_and_logs_json(tmp_path: Path, repo_root: Path, notify: NotifySocket) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'state_dir = "{tmp_path}/s"\n[weldr]\nsocket = "{tmp_path}/w.sock"\n')
    proc = await start_serve(repo_root, config, notify, tmp_path / "log")
    await notify.wait_for("READY=1", proc)
    assert await _stop(proc, signal.SIGINT) == 0
    lines = (tmp_path / "log").read_text().splitlines()
    import json

    events = [json.loads(line)["event"] for line in lines]  # not a tty: JSON lines
    assert events[0] == "ready" and "stopped" in events


async def test_listener_in_use_is_one_line_error(tmp_path: Path, repo_root: Path, notify: NotifySocket) -> None:
    import socket

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        config = tmp_path / "c.toml"
        config.write_text(f'state_dir = "{tmp_path}/s"\n[weldr]\nsocket = "{tmp_path}/w.sock"\n'
                          f'[cloud]\nlisten = "127.0.0.1:{busy.getsockname()[1]}"\nenable_tls = false\n')
        proc = await start_serve(repo_root, config, notify, tmp_path / "log")
        async with asyncio.timeout(STOP_LIMIT):
            rc = await proc.wait()
    finally:
        busy.close()
    err = (tmp_path / "log").read_text()
    assert rc == 1 and "address already in use" in err and "Traceback" not in err
    assert not (tmp_path / "w.sock").exists()


async def test_socket_activation(tmp_path: Path, repo_root: Path, notify: NotifySocket) -> None:
    activate = need_tool("systemd-socket-activate")
    weldr = tmp_path / "activated" / "api.socket"
    weldr.parent.mkdir()
    configured = tmp_path / "configured.socket"
    cloud_port = free_port()
    config = tmp_path / "c.toml"
    config.write_text(f'state_dir = "{tmp_path}/s"\n[weldr]\nsocket = "{configured}"\n'
                      f'[cloud]\nlisten = "127.0.0.1:{free_port()}"\nenable_tls = false\n')
    env = daemon_env(repo_root, notify)
    setenv = [f"-E{k}={env[k]}" for k in ("PYTHONPATH", "NOTIFY_SOCKET", "PATH") if k in env]
    proc = await asyncio.create_subprocess_exec(
        activate, "-l", str(weldr), "-l", f"127.0.0.1:{cloud_port}", "--fdname=weldr:cloud", *setenv,
        sys.executable, "-m", "osbuildd.cli", "serve", "--config", str(config),
        cwd=repo_root, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    output: list[str] = []
    drain: asyncio.Task | None = None
    try:
        # the activator says "Listening on ..." per socket, then starts the service on the first
        # connection, like systemd does
        async with asyncio.timeout(STOP_LIMIT):
            while sum("Listening on" in x for x in output) < 2:
                line = await proc.stderr.readline()
                assert line, f"systemd-socket-activate exited: {output}"
                output.append(line.decode())

        async def drain_rest() -> None:
            while line := await proc.stderr.readline():
                output.append(line.decode())

        drain = asyncio.create_task(drain_rest())
        first = asyncio.ensure_future(get_json("http://localhost/api/status", unix=weldr))
        ready = await notify.wait_for("READY=1", proc)
        assert f"MAINPID={proc.pid}" in ready  # exec'd in place: the activator's pid is the daemon's
        async with asyncio.timeout(STOP_LIMIT):
            status, body = await first
        assert status == 200 and body["api"] == "1"
        status, body = await get_json(f"http://127.0.0.1:{cloud_port}/status")
        assert status == 200 and body["api"] == "cloud"
        assert not configured.exists()  # the inherited socket took precedence over the config
    finally:
        rc = await _stop(proc)
        if drain is not None:
            await drain
    assert rc == 0, "".join(output)
    assert "Traceback" not in "".join(output)
    assert await asyncio.to_thread(weldr.exists)  # the socket file belongs to the activator (systemd)
