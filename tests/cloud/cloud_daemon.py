"""``osbuildd serve`` as a child process with its Weldr socket and a Cloud API on a unix listener (no TLS,
no auth: every compose visible), building nothing (``local_executor = false``). Composes are made
through the Weldr socket (``?test=1|2`` and real queued ones) and read through the Cloud API, as a
client of both would. The depsolve cache is the run's shared one (real Debian mirror)."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import yaml
from foundation.daemon_helpers import NotifySocket, start_serve

CLOUD = "/api/image-builder-composer/v2"
SPEC = Path(__file__).resolve().parents[2] / "osbuildd" / "api" / "cloud" / "openapi.v2.yml"


@functools.cache
def _components() -> dict[str, Any]:
    return dict(yaml.safe_load(SPEC.read_text())["components"])


def conforms(body: Any, schema: str) -> None:
    """``body`` is valid against the spec's ``components.schemas[schema]`` (OpenAPI 3.0's schema
    objects are JSON Schema draft 4 bar a few keywords the validator ignores)."""
    validator = jsonschema.Draft4Validator({"$ref": f"#/components/schemas/{schema}", "components": _components()})
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)]
    assert errors == [], errors[:5]


def error_id(r: Reply) -> str:
    """The id of a Cloud API error answer (checked against the spec's Error)."""
    body = r.json()
    conforms(body, "Error")
    assert body["kind"] == "Error", body
    return str(body["id"])


@dataclass
class Reply:
    status: int
    headers: Any
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def request(self, method: str, path: str, obj: Any = None) -> Reply:
        data = None if obj is None else json.dumps(obj)
        headers = {} if obj is None else {"Content-Type": "application/json"}
        async with self.session.request(method, "http://localhost" + path, data=data, headers=headers) as r:
            return Reply(r.status, r.headers, await r.read())

    async def get(self, path: str) -> Reply:
        return await self.request("GET", path)

    async def post(self, path: str, obj: Any) -> Reply:
        return await self.request("POST", path, obj)


@dataclass
class Daemon:
    weldr: Client
    cloud: Client
    state: Path

    async def compose(self, bp: dict[str, Any], test: str = "", compose_type: str = "qcow2") -> str:
        """A compose of ``bp`` started through Weldr (``test``: "1" failed, "2" finished, "" queued)."""
        r = await self.weldr.post("/api/v1/blueprints/new", bp)
        assert r.status == 200, r.body
        path = "/api/v1/compose" + (f"?test={test}" if test else "")
        r = await self.weldr.post(path, {"blueprint_name": bp["name"], "compose_type": compose_type, "branch": "master"})
        assert r.status == 200, r.body
        return str(r.json()["build_id"])


def share_cache(state: Path, shared_state_dir: Path) -> None:
    state.mkdir(parents=True, exist_ok=True)
    for name in ("cache", "store"):
        if not (state / name).exists():
            os.symlink(shared_state_dir / name, state / name)


@asynccontextmanager
async def cloud_daemon(repo_root: Path, tmp_path: Path, shared_state_dir: Path,
                       builder: str = "local_executor = false") -> AsyncIterator[Daemon]:
    """``builder``: the ``[builder]`` section's lines (default: nothing runs, composes stay pending)."""
    state, run = tmp_path / "state", tmp_path / "run"
    share_cache(state, shared_state_dir)
    run.mkdir()
    config = tmp_path / "osbuildd.toml"
    config.write_text(
        f'state_dir = "{state}"\nlog_format = "json"\n[weldr]\nsocket = "{run}/weldr.socket"\n'
        f'[cloud]\nlisten = "unix:{run}/cloud.sock"\n[builder]\n{builder}\n')
    notify = NotifySocket(tmp_path / "notify.sock")
    proc = await start_serve(repo_root, config, notify, tmp_path / "daemon.log")
    try:
        await notify.wait_for("READY=1", proc)
        timeout = aiohttp.ClientTimeout(total=600)
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(run / "weldr.socket")),
                                         timeout=timeout) as w, \
                aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(run / "cloud.sock")),
                                      timeout=timeout) as c:
            yield Daemon(Client(w), Client(c), state)
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
        notify.close()
