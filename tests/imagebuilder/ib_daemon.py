"""``osbuildd serve`` as a child process serving the image-builder API on a unix socket, building
nothing (``[builder] local_executor = false``: composes stay queued), with a distributions directory,
allow file and quota file of the test's own.

- ``ib_daemon(tmp, ...)``: the running daemon as :class:`IBDaemon` (``.call(method, path, org=...)``,
  ``.state``, ``.db``).
- ``identity(org, ...)``: an ``X-Rh-Identity`` value as the console gateway sets it.
- ``distributions_dir(root)``: osbuildd's shipped distributions plus restricted ``fedora-39`` and
  ``fedora-42`` (upstream's test fixtures' names; made from the shipped fedora-43 file).
"""

from __future__ import annotations

import base64
import functools
import json
import shutil
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import yaml
from foundation.daemon_helpers import NotifySocket, free_port, start_serve

from osbuildd.imagebuilder.distributions import SHIPPED_DIR

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "imagebuilder"
SPEC = REPO / "osbuildd" / "api" / "imagebuilder" / "openapi.v1.yml"
IB = "/api/image-builder/v1"
ORG_A, ORG_B = "000000", "000001"   # upstream's test orgs (allow.json: A may use fedora-*, B nothing)


def identity(org: str = ORG_A, *, account: str = "000000", type_: str = "User", rhel: bool = True,
             email: str = "user@user.user") -> str:
    doc = {"identity": {"type": type_, "account_number": account, "org_id": org, "internal": {"org_id": org},
                        "user": {"username": "user", "email": email}},
           "entitlements": {"rhel": {"is_entitled": rhel}}}
    return base64.b64encode(json.dumps(doc).encode()).decode()


@functools.cache
def _components() -> dict[str, Any]:
    return dict(yaml.safe_load(SPEC.read_text())["components"])


def conforms(body: Any, schema: str) -> None:
    """``body`` is valid against the served spec's ``components.schemas[schema]``."""
    validator = jsonschema.Draft4Validator({"$ref": f"#/components/schemas/{schema}", "components": _components()})
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)]
    assert errors == [], errors[:5]


def distributions_dir(root: Path) -> Path:
    out = root / "distributions"
    shutil.copytree(SHIPPED_DIR, out, symlinks=True)
    fedora = json.loads((SHIPPED_DIR / "fedora-43" / "fedora-43.json").read_text())
    for name in ("fedora-39", "fedora-42"):
        doc = json.loads(json.dumps(fedora).replace("fedora-43", name).replace("Fedora Linux 43",
                                                                                f"Fedora Linux {name[-2:]}"))
        (out / name).mkdir()
        (out / name / f"{name}.json").write_text(json.dumps(doc))
    return out


def quota_file(root: Path, entries: dict[str, int]) -> Path:
    two_weeks_ns = 14 * 24 * 3600 * 10**9
    path = root / "quotas.json"
    path.write_text(json.dumps({org: {"quota": n, "slidingWindow": two_weeks_ns} for org, n in entries.items()}))
    return path


@dataclass
class Answer:
    status: int
    headers: Any
    text: str

    def json(self) -> Any:
        return json.loads(self.text)

    def error(self) -> tuple[str, str]:
        """(title, detail) of an image-builder error answer (checked against HTTPErrorList)."""
        body = self.json()
        conforms(body, "HTTPErrorList")
        assert len(body["errors"]) == 1, body
        return body["errors"][0]["title"], body["errors"][0]["detail"]


@dataclass
class IBDaemon:
    session: aiohttp.ClientSession
    state: Path
    base: str = "http://localhost"   # the listener's URL (a TCP one with ``tcp=True``)

    async def call(self, method: str, path: str, body: Any = None, *, org: str | None = ORG_A,
                   headers: dict[str, str] | None = None, raw: bytes | None = None) -> Answer:
        """``path`` under ``/api/image-builder/v1`` unless it starts with ``/``...: absolute."""
        url = self.base + (path if path.startswith("/") else f"{IB}/{path}")
        h = dict(headers or {})
        if org is not None:
            h.setdefault("X-Rh-Identity", identity(org))
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        async with self.session.request(method, url, data=data, headers=h) as r:
            return Answer(r.status, r.headers, await r.text())

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read the daemon's database (WAL: a reader beside the daemon's writer)."""
        with sqlite3.connect(f"file:{self.state / 'osbuildd.db'}?mode=ro", uri=True) as conn:
            return conn.execute(sql, params).fetchall()


@asynccontextmanager
async def ib_daemon(tmp: Path, *, quotas: dict[str, int] | None = None, allow: bool = True,
                    allowed_org_ids: list[str] | None = None, composer: str = "local",
                    builder: str = "local_executor = false", shared_state: Path | None = None,
                    distributions: Path | None = None, tcp: bool = False) -> AsyncIterator[IBDaemon]:
    """``composer``: "local" (the in-process compose service) or "remote" (the same daemon's Cloud API
    on loopback, plain HTTP, through ``osbuild_url``: the remote composer's path) or "unreachable" (an
``osbuild_url`` nobody listens on). ``builder``: the
    ``[builder]`` section's lines; ``shared_state``: the run's warm state dir, whose depsolve cache and
    store the daemon reuses; ``distributions``: a distributions dir instead of the default one; ``tcp``:
    listen on a loopback port instead of a unix socket (for HTTP clients without unix sockets)."""
    state, run = tmp / "state", tmp / "run"
    run.mkdir(parents=True)
    if shared_state is not None:
        for name in ("cache", "store"):
            state.mkdir(parents=True, exist_ok=True)
            (state / name).symlink_to(shared_state / name)
    listen = f"127.0.0.1:{free_port()}" if tcp else f"unix:{run}/ib.sock"
    lines = [f'listen = "{listen}"', f'distributions_dir = "{distributions or distributions_dir(tmp)}"']
    cloud = ""
    if composer in ("remote", "unreachable"):
        port = free_port()
        if composer == "remote":
            cloud = f'[cloud]\nlisten = "127.0.0.1:{port}"\nenable_tls = false\n'
        lines.append(f'osbuild_url = "http://127.0.0.1:{port}"')
    if allow:
        lines.append(f'allow_file = "{DATA / "allow.json"}"')
    if quotas is not None:
        lines.append(f'quota_file = "{quota_file(tmp, quotas)}"')
    if allowed_org_ids is not None:
        lines.append(f"allowed_org_ids = {json.dumps(allowed_org_ids)}")
    config = tmp / "osbuildd.toml"
    config.write_text(f'state_dir = "{state}"\nlog_format = "json"\n[weldr]\nsocket = "{run}/weldr.socket"\n'
                      + cloud + "[image_builder]\n" + "\n".join(lines) + f"\n[builder]\n{builder}\n")
    notify = NotifySocket(tmp / "notify.sock")
    proc = await start_serve(REPO, config, notify, tmp / "daemon.log")
    try:
        await notify.wait_for("READY=1", proc)
        connector = aiohttp.TCPConnector() if tcp else aiohttp.UnixConnector(path=str(run / "ib.sock"))
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
            yield IBDaemon(session, state, f"http://{listen}" if tcp else "http://localhost")
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
        notify.close()
