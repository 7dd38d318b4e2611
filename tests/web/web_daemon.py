"""``osbuildd serve`` with a ``[web]`` listener on a loopback port and a static directory of the
test's own (a tiny index.html and assets: the tests do not depend on npm), building nothing.

- ``web_server(tmp, mode=..., ...)``: the running daemon as :class:`WebServer`; ``.get(path, ...)``
  and ``.call(method, path, ...)`` go to the web listener (``base``), ``.ib`` to the image-builder
  listener (a unix socket, hosted as always) when ``ib_listener``.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from foundation.daemon_helpers import NotifySocket, free_port, start_serve
from imagebuilder.ib_daemon import IB, Answer, identity

REPO = Path(__file__).resolve().parents[2]
INDEX = '<!doctype html><html><head><script type="module" src="/assets/app-1a2b3c.js"></script></head>' \
        '<body><div id="root"></div></body></html>\n'
APP_JS = "export const hello = 'web ui';\n" * 200   # compressible


def static_dir(root: Path) -> Path:
    out = root / "static"
    (out / "assets").mkdir(parents=True)
    (out / "index.html").write_text(INDEX)
    (out / "assets" / "app-1a2b3c.js").write_text(APP_JS)
    (out / "assets" / "style-9f8e.css").write_text("body { color: black; }\n" * 100)
    (out / "assets" / "style-9f8e.css.gz").write_bytes(gzip.compress(b"body { color: black; }\n" * 100))
    (out / "favicon.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>\n')
    (root / "secret.txt").write_text("outside the static dir\n")
    return out


@dataclass
class WebServer:
    session: aiohttp.ClientSession
    base: str
    state: Path
    log: Path
    ib_sock: Path | None

    async def call(self, method: str, path: str, body: Any = None, *, org: str | None = None,
                   headers: dict[str, str] | None = None, base: str | None = None) -> Answer:
        """``path`` under ``/api/image-builder/v1`` unless it starts with ``/``; ``org``: send that
        organisation's X-Rh-Identity."""
        url = (base or self.base) + (path if path.startswith("/") else f"{IB}/{path}")
        h = dict(headers or {})
        if org is not None:
            h["X-Rh-Identity"] = identity(org)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        async with self.session.request(method, url, data=data, headers=h, auto_decompress=True) as r:
            return Answer(r.status, r.headers, await r.text())

    async def ib(self, method: str, path: str, body: Any = None, *, org: str | None = None) -> Answer:
        """The image-builder listener (hosted: identity from the header); ``path`` as in call()."""
        assert self.ib_sock is not None
        h = {"X-Rh-Identity": identity(org)} if org else {}
        if body is not None:
            h["Content-Type"] = "application/json"
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(self.ib_sock))) as s, \
                s.request(method, "http://localhost" + (path if path.startswith("/") else f"{IB}/{path}"), headers=h,
                          data=None if body is None else json.dumps(body)) as r:
            return Answer(r.status, r.headers, await r.text())


@asynccontextmanager
async def web_server(tmp: Path, *, mode: str = "local", web_lines: str = "", ib_lines: str = "",
                     ib_listener: bool = False, static: bool = True,
                     shared_state: Path | None = None) -> AsyncIterator[WebServer]:
    """``shared_state``: the run's warm state dir, whose depsolve cache and store the daemon reuses
    (fake composes are depsolved)."""
    state, run = tmp / "state", tmp / "run"
    run.mkdir(parents=True)
    if shared_state is not None:
        state.mkdir(parents=True)
        for name in ("cache", "store"):
            (state / name).symlink_to(shared_state / name)
    port = free_port()
    web = [f'listen = "127.0.0.1:{port}"', f'mode = "{mode}"']
    web.append(f'static_dir = "{static_dir(tmp) if static else tmp / "missing"}"')
    ib = [f'listen = "unix:{run}/ib.sock"'] if ib_listener else []
    config = tmp / "osbuildd.toml"
    config.write_text(f'state_dir = "{state}"\nlog_format = "json"\n[weldr]\nsocket = "{run}/weldr.socket"\n'
                      f"[web]\n{chr(10).join(web)}\n{web_lines}\n[image_builder]\n{chr(10).join(ib)}\n{ib_lines}\n"
                      "[builder]\nlocal_executor = false\n")
    notify = NotifySocket(tmp / "notify.sock")
    log = tmp / "daemon.log"
    proc = await start_serve(REPO, config, notify, log)
    try:
        await notify.wait_for("READY=1", proc)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            yield WebServer(session, f"http://127.0.0.1:{port}", state, log,
                            run / "ib.sock" if ib_listener else None)
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
        notify.close()
