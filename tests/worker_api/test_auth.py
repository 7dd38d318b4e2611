"""Who may talk to the worker API: mTLS refuses a connection without a client certificate or with one
of another CA (the handshake), and answers 403 to a certificate of the CA whose names are outside
``allowed_domains``; nothing reaches the job store or the workers table then. With JWT instead:
``/openapi`` and ``/errors`` are public, everything else needs a token with a tenant, and a worker
registers and takes jobs in its tenant's channel ``org-<tenant>`` only."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from cloud.tlsutil import JWKSServer, client_context, foreign_client, jwt_section, token

from osbuildd.queue import JobStatus

from .wdaemon import BASE, WorkerDaemon, error_of, worker_daemon


@pytest.fixture
async def jwks(certs: Path) -> AsyncIterator[JWKSServer]:
    server = JWKSServer(certs)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def _refused(wd: WorkerDaemon, ctx: ssl.SSLContext) -> None:
    c = wd.client(ssl_context=ctx)
    try:
        with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError)):
            await c.request("POST", f"{BASE}/workers", {"arch": "x86_64"})
    finally:
        await c.close()


async def test_mtls_refusals(wd: WorkerDaemon, tmp_path: Path) -> None:
    await _refused(wd, client_context(wd.certs, None))                    # no client certificate
    crt, key = foreign_client(tmp_path / "foreign")
    await _refused(wd, client_context(wd.certs, cert=crt, key=key))       # another CA
    outsider = wd.client("client")                                         # CN=client.osbuild.org
    try:
        for method, path, obj in (("POST", "/workers", {"arch": "x86_64"}), ("POST", "/jobs", {"types": ["depsolve"],
                                  "arch": "x86_64"}), ("GET", "/status", None)):
            body = error_of(await outsider.request(method, BASE + path, obj), 403, 403)
            assert "domain not in allowlist" in body["details"]
    finally:
        await outsider.close()
    async with wd.side_store() as jobs:
        assert await jobs.db.conn.execute_fetchall("SELECT id FROM workers") == []
    worker = wd.client()
    try:
        assert (await worker.request("GET", f"{BASE}/status")).status == 200
    finally:
        await worker.close()


async def test_jwt_channels(tmp_path: Path, certs: Path, jwks: JWKSServer) -> None:
    section = jwt_section(certs, jwks, request_job_timeout=1)
    async with worker_daemon(tmp_path, certs, section) as wd:
        tok = token(jwks.keys[0], tenant="000042")
        anonymous = wd.client(None, ssl_context=client_context(certs, None))
        worker = wd.client(None, ssl_context=client_context(certs, None), headers={"Authorization": f"Bearer {tok}"})
        no_tenant = wd.client(None, ssl_context=client_context(certs, None),
                              headers={"Authorization": f"Bearer {token(jwks.keys[0], tenant=None)}"})
        try:
            assert (await anonymous.request("GET", f"{BASE}/openapi")).status == 200
            assert (await anonymous.request("GET", f"{BASE}/errors/5")).status == 200
            error_of(await anonymous.request("GET", f"{BASE}/status"), 401, 401)
            error_of(await anonymous.request("POST", f"{BASE}/workers", {"arch": "x86_64"}), 401, 401)
            error_of(await no_tenant.request("POST", f"{BASE}/workers", {"arch": "x86_64"}), 400, 16)
            wid = await worker.register()
            async with wd.side_store() as jobs:
                rows = await jobs.db.conn.execute_fetchall("SELECT channel FROM workers WHERE id = ?", (wid,))
                assert [r[0] for r in rows] == ["org-000042"]
                other = await jobs.enqueue("depsolve", {"for": "default channel"})
                r = await worker.take(["depsolve"], worker_id=wid)
                assert r.status == 204, r.body              # the default channel's job is not this tenant's
                mine = await jobs.enqueue("depsolve", {"for": "tenant"}, channel="org-000042")
                r = await worker.take(["depsolve"], worker_id=wid)
                assert r.status == 201 and r.json()["id"] == mine, r.body
                assert (await jobs.get(other)).status == JobStatus.PENDING
        finally:
            for c in (anonymous, worker, no_tenant):
                await c.close()
