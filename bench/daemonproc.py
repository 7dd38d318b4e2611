"""What the Weldr benches serve: the daemon (`osbuildd serve` on a private state dir, no local executor,
so composes are measured, never built) and their baseline (a bare aiohttp app on the same event loop)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def start_daemon(state: Path, socket_path: Path, extra: str = "", log: Path | None = None) -> subprocess.Popen:
    """``extra``: more config sections (TOML text, e.g. [database] or [worker_api]); ``log``: where the
    daemon's stderr goes (else discarded)."""
    conf = state / "osbuildd.toml"
    conf.write_text(f'state_dir = "{state}"\nlog_level = "warning"\nlog_format = "json"\n'
                    f'[weldr]\nsocket = "{socket_path}"\n[builder]\nlocal_executor = false\n{extra}')
    argv = [sys.executable, "-m", "osbuildd.cli", "serve", "--config", str(conf)]
    if log is None:
        return subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with log.open("ab") as err:   # the child has its own copy of the descriptor
        return subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=err)


STATUS_BODY = (b'{"api":"1","db_supported":true,"db_version":"0","schema_version":"0",'
               b'"backend":"osbuild-composer","build":"baseline","msgs":[]}\n')


def baseline_server(socket_path: str) -> None:
    """A bare aiohttp app answering constant JSON on the unix socket, on the loop the daemon picks."""
    from aiohttp import web

    async def status(_: web.Request) -> web.Response:
        return web.Response(body=STATUS_BODY, content_type="application/json", charset="utf-8")

    app = web.Application()
    app.router.add_get("/api/status", status)
    try:   # the loop the daemon picks (osbuildd.daemon.run), so the ratio compares like with like
        from osbuildd.daemon import event_loop_factory
        factory = event_loop_factory()
    except ImportError:
        factory = None

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.UnixSite(runner, socket_path).start()
        await asyncio.Event().wait()

    if factory is None:
        asyncio.run(main())
    else:
        with asyncio.Runner(loop_factory=factory) as r:
            r.run(main())


async def fetch(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """One keep-alive HTTP/1.1 exchange; returns the status. Bodies are read by Content-Length."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status
