"""What ``osbuildd.api.auth`` hands the handlers (``identity.of(request)``), seen through a tiny app that
echoes it, served over real TLS / a real unix socket in this process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp import web
from foundation.daemon_helpers import free_port

from osbuildd.api import auth, identity, tls
from osbuildd.config import SecureListenerConfig

from .tlsutil import JWKSServer, client_context, token


async def _echo(request: web.Request) -> web.Response:
    who = identity.of(request)
    return web.json_response({"method": who.method, "tenant": who.tenant, "subject": who.subject,
                              "channel": who.channel})


@asynccontextmanager
async def _app(section: SecureListenerConfig, unix: Path) -> AsyncIterator[str]:
    app = web.Application(middlewares=auth.middlewares(section, exempt=lambda p: p == "/public"))
    app.router.add_get("/who", _echo)
    app.router.add_get("/public", _echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    ctx = tls.server_context(section, "cloud") if section.enable_tls else None
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ctx).start()
    await web.UnixSite(runner, str(unix)).start()
    try:
        yield f"{'https' if ctx else 'http'}://localhost:{port}"
    finally:
        await runner.cleanup()


async def _json(session: aiohttp.ClientSession, url: str, **kw: object) -> tuple[int, dict]:
    async with session.get(url, **kw) as resp:   # type: ignore[arg-type]
        return resp.status, await resp.json(content_type=None)


async def test_mtls_local_and_none(certs: Path, tmp_path: Path) -> None:
    section = SecureListenerConfig(cert=str(certs / "composer-crt.pem"), key=str(certs / "composer-key.pem"),
                                   ca=str(certs / "ca-crt.pem"), allowed_domains=["client.osbuild.org"])
    async with _app(section, tmp_path / "a.sock") as base:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_context(certs))) as s:
            status, who = await _json(s, f"{base}/who")
        assert status == 200 and who == {"method": "mtls", "tenant": None, "channel": None,
                                          "subject": "CN=client.osbuild.org,emailAddress=osbuild@example.com"}
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(tmp_path / "a.sock"))) as s:
            status, who = await _json(s, "http://localhost/who")
        assert status == 200 and who["method"] == "local" and who["channel"] is None
    plain = SecureListenerConfig(enable_tls=False, enable_mtls=False)
    async with _app(plain, tmp_path / "b.sock") as base, aiohttp.ClientSession() as s:
        status, who = await _json(s, f"{base}/who")
        assert status == 200 and who["method"] == "none"


async def test_jwt_identity(certs: Path, tmp_path: Path, jwks: JWKSServer) -> None:
    section = SecureListenerConfig(cert=str(certs / "composer-crt.pem"), key=str(certs / "composer-key.pem"),
                                   enable_mtls=False, enable_jwt=True, jwt_keys_urls=[jwks.url],
                                   jwt_ca_file=str(certs / "ca-crt.pem"),
                                   jwt_tenant_provider_fields=["rh-org-id", "account_id"])
    async with _app(section, tmp_path / "j.sock") as base:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_context(certs, None))) as s:
            tok = token(jwks.keys[0], tenant="", account_id="77", sub="alice")   # first non-empty field
            status, who = await _json(s, f"{base}/who", headers={"Authorization": f"Bearer {tok}"})
            assert status == 200 and who == {"method": "jwt", "tenant": "77", "subject": "alice",
                                              "channel": "org-77"}
            status, who = await _json(s, f"{base}/public")
            assert status == 200 and who["method"] == "none"
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(tmp_path / "j.sock"))) as s:
            status, who = await _json(s, "http://localhost/who")   # local: no token asked
            assert status == 200 and who["method"] == "local"
