"""A Weldr daemon app on a real unix socket, over a real SQLite state dir, and a client for it."""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from osbuildd.api.weldr.app import build_app
from osbuildd.queue.db import Database

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


@asynccontextmanager
async def fixture_daemon(fixture: str = "BaseFixture", **app_kwargs: Any) -> AsyncIterator[tuple[WeldrClient, web.Application]]:
    """The Weldr app as upstream's ``createTestWeldrAPI`` sets it up: test distro, mock depsolver,
    fixture composes; blueprints and sources in a fresh SQLite database."""
    with tempfile.TemporaryDirectory(prefix="weldr-") as tmp:
        db = await Database.open(Path(tmp) / "osbuildd.db")
        try:
            config = SimpleNamespace(state_dir=Path(tmp), weldr=SimpleNamespace(max_body_size=app_kwargs.pop(
                "max_body_size", 1 << 20)))
            services = SimpleNamespace(config=config, db=db, compose=FixtureComposes(fixture))
            kwargs: dict[str, Any] = {"distros": TestDistros(), "depsolver": MockDepsolver(fixture),
                                      "host_arch": "test_arch", "build": "devel"}
            kwargs.update({k: v for k, v in app_kwargs.items() if v is not None})
            app = build_app(services, **kwargs)
            async with weldr_server(app, Path(tmp) / "api.socket") as client:
                yield client, app
        finally:
            await db.close()


@pytest.fixture
async def base_daemon() -> AsyncIterator[tuple[WeldrClient, web.Application]]:
    """BaseFixture: its composes, and the committed blueprint "test" 0.0.0."""
    async with fixture_daemon("BaseFixture") as (client, app):
        r = await client.post_json("/api/v0/blueprints/new", {"name": "test", "version": "0.0.0"})
        assert r.status == 200, r.text
        yield client, app
