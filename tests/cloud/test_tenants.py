"""Tenant isolation over JWT on the real daemon (TLS, a JWKS on loopback HTTPS): a compose is on
channel ``org-<tenant>``; another tenant gets upstream's 404 id 15 on every per-compose route, as for
a compose that does not exist, and ``GET /composes/`` lists only the caller's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from .cloud_daemon import conforms
from .tlsutil import CLOUD, Answer, JWKSServer, TLSDaemon, cloud_daemon_tls, cloud_error, jwt_section

BODY = {"distribution": "debian-12", "customizations": {"packages": ["tmux"]},
        "image_request": {"architecture": "x86_64", "image_type": "aws",
                          "repositories": [{"baseurl": "http://deb.debian.org/debian"}],
                          "upload_options": {"region": "us-east-1", "share_with_accounts": ["123456789012"]}}}

ROUTES = [("GET", ""), ("GET", "/metadata"), ("GET", "/logs"), ("GET", "/manifests"), ("GET", "/sboms"),
          ("GET", "/download"), ("POST", "/clone"), ("DELETE", "")]


class Tenant:
    def __init__(self, daemon: TLSDaemon, name: str) -> None:
        self.session = daemon.client(headers={"Authorization": f"Bearer {daemon.token(tenant=name)}"})
        self.base = daemon.base

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.session.request(method, self.base + path, json=body) as r:
            try:
                return r.status, await r.json(content_type=None)
            except ValueError:
                return r.status, None


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory, certs: Path) -> AsyncIterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("tenants")
    jwks = JWKSServer(certs)
    await jwks.start()
    try:
        async with cloud_daemon_tls(tmp, jwt_section(certs, jwks), certs=certs, jwks=jwks) as d:
            a, b = Tenant(d, "000001"), Tenant(d, "000002")
            status, made = await a.call("POST", "/compose", BODY)
            assert status == 201, made
            status, other = await b.call("POST", "/compose", BODY)
            assert status == 201, other
            try:
                yield {"a": a, "b": b, "id": made["id"], "b_id": other["id"]}
            finally:
                for t in (a, b):
                    await t.session.close()
    finally:
        await jwks.stop()


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.mark.parametrize(("method", "suffix"), ROUTES, ids=[f"{m} {s or '/'}" for m, s in ROUTES])
async def test_another_tenant_never_sees_a_compose(world: dict[str, Any], method: str, suffix: str) -> None:
    a, b, cid = world["a"], world["b"], world["id"]
    body = {"region": "eu-west-1"} if suffix == "/clone" else None
    status, answer = await b.call(method, f"/composes/{cid}{suffix}", body)
    cloud_error(Answer(status, answer), 404, 15)
    # the same answer as for a compose that does not exist
    status, missing = await b.call(method, f"/composes/00000000-0000-4000-8000-000000000000{suffix}", body)
    assert (status, missing["id"]) == (404, "15"), missing
    # while its own tenant reaches the compose (whatever the route says of a pending compose)
    if method == "GET":
        status, own = await a.call(method, f"/composes/{cid}{suffix}")
        if suffix == "/sboms":   # upstream's 15 for a compose without a depsolve result yet, saying so
            assert "no depsolve result" in own["details"], own
        else:
            assert not (status == 404 and isinstance(own, dict) and own.get("id") == "15"), own
    # and it is still there
    status, still = await a.call("GET", f"/composes/{cid}")
    assert status == 200 and still["id"] == cid, still


async def test_listing_is_per_tenant(world: dict[str, Any]) -> None:
    for me, mine in (("a", world["id"]), ("b", world["b_id"])):
        status, items = await world[me].call("GET", "/composes/")
        assert status == 200, items
        assert [c["id"] for c in items] == [mine], items
        for c in items:
            conforms(c, "ComposeStatus")


async def test_no_token_no_compose(world: dict[str, Any]) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as s, \
            s.get(f"{world['a'].base}/composes/{world['id']}") as r:
        assert r.status == 401 and (await r.json())["id"] == "401"
    assert CLOUD in world["a"].base
