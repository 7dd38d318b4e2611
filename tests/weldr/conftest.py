"""A Weldr daemon app on a real unix socket, over a real SQLite state dir, and a client for it."""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from osbuildd.api.weldr.app import build_app
from osbuildd.blueprint.store import BlueprintStore
from osbuildd.config import Config, WeldrConfig
from osbuildd.distro.sourcestore import SourceStore
from osbuildd.queue import JobStore
from osbuildd.queue.db import Database
from osbuildd.services import Services

from .upstream_mocks import FixtureComposes, MockDepsolver, TestDistros


@dataclass
class Reply:
    status: int
    headers: Any
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


class WeldrClient:
    """What composer-cli does: HTTP/1.1 requests on the unix socket."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def request(self, method: str, path: str, body: bytes | str | None = None,
                      content_type: str | None = None) -> Reply:
        headers = {"Content-Type": content_type} if content_type else {}
        data = body.encode() if isinstance(body, str) else body
        async with self.session.request(method, "http://localhost" + path, data=data, headers=headers) as r:
            return Reply(r.status, r.headers, await r.read())

    async def get(self, path: str) -> Reply:
        return await self.request("GET", path)

    async def post_json(self, path: str, obj: Any) -> Reply:
        return await self.request("POST", path, json.dumps(obj), "application/json")

    async def delete(self, path: str) -> Reply:
        return await self.request("DELETE", path)


@asynccontextmanager
async def weldr_server(app: web.Application, socket_path: Path) -> AsyncIterator[WeldrClient]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.UnixSite(runner, str(socket_path))
    await site.start()
    try:
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(socket_path))) as s:
            yield WeldrClient(s)
    finally:
        await runner.cleanup()


async def _services(tmp: Path, db: Database, fixture: str, app_kwargs: dict[str, Any]) -> Services:
    """The daemon's shared services as upstream's test API has them: its doubles for the distros, the
    depsolver and the compose service; real stores on ``db``."""
    config = Config(state_dir=tmp, weldr=WeldrConfig(max_body_size=app_kwargs.pop("max_body_size", 1 << 20)))
    distros = app_kwargs.pop("distros", None) or TestDistros()
    depsolver = app_kwargs.pop("depsolver", None) or MockDepsolver(fixture)
    return Services(config=config, db=db, jobs=await JobStore.open(db, state_dir=tmp),
                    blueprints=BlueprintStore(db), sources=SourceStore(db),
                    compose=FixtureComposes(fixture),  # upstream's fixture store stands in for ComposeService
                    depsolver=depsolver, distros=distros)


@asynccontextmanager
async def fixture_daemon(fixture: str = "BaseFixture", **app_kwargs: Any) -> AsyncIterator[tuple[WeldrClient, web.Application]]:
    """The Weldr app as upstream's ``createTestWeldrAPI`` sets it up: test distro, mock depsolver,
    fixture composes; blueprints and sources in a fresh SQLite database."""
    with tempfile.TemporaryDirectory(prefix="weldr-") as tmp:
        db = await Database.open(Path(tmp) / "osbuildd.db")
        services = None
        try:
            services = await _services(Path(tmp), db, fixture, app_kwargs)
            kwargs: dict[str, Any] = {"host_arch": "test_arch", "build": "devel"}
            kwargs.update({k: v for k, v in app_kwargs.items() if v is not None})
            app = build_app(services, **kwargs)
            async with weldr_server(app, Path(tmp) / "api.socket") as client:
                yield client, app
        finally:
            if services is not None:
                await services.jobs.close()
            await db.close()


@pytest.fixture
async def base_daemon() -> AsyncIterator[tuple[WeldrClient, web.Application]]:
    """BaseFixture: its composes, and the committed blueprint "test" 0.0.0."""
    async with fixture_daemon("BaseFixture") as (client, app):
        r = await client.post_json("/api/v0/blueprints/new", {"name": "test", "version": "0.0.0"})
        assert r.status == 200, r.text
        yield client, app
