"""Fixtures for the Cloud API over TCP with real TLS (helpers in tests/cloud/tlsutil.py).

- ``moto_url`` (session, tests/upload/conftest.py's): moto's URL, checked reachable.
- ``certs`` (session): a directory made by ``osbuildd gen-certs`` itself (ca-crt.pem, composer-*,
  worker-*, client-* .pem).
- ``mtls_cloud``: ``osbuildd serve`` with ``[cloud]`` over mTLS (gen-certs' server certificate,
  ``allowed_domains = ["client.osbuild.org"]``: gen-certs' client certificate passes, its worker one
  does not), ``local_executor = false``. A ``TLSDaemon``: ``.base`` URL, ``.client()`` session with the
  client certificate, ``.weldr`` socket, ``.state``, ``.log``.
- ``jwks``: a JWKS server over HTTPS on 127.0.0.1 (``.url``, ``.keys``, ``.rotate(kid)``, ``.hits``).
- ``jwt_cloud``: ``osbuildd serve`` with ``[cloud]`` over TLS + JWT against ``jwks``
  (``jwt_tenant_provider_fields = ["rh-org-id"]``); ``.token(tenant=...)`` signs a token,
  ``.client(headers={"Authorization": f"Bearer {tok}"})``.
Other settings: ``tlsutil.cloud_daemon_tls(tmp_path, tlsutil.mtls_section(certs, ...), certs=certs,
builder={...})``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from upload.conftest import moto_url  # noqa: F401 - the one moto fixture, shared

from .tlsutil import JWKSServer, TLSDaemon, cloud_daemon_tls, gen_certs, jwt_section, mtls_section


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gen_certs(tmp_path_factory.mktemp("certs") / "x509")


@pytest.fixture
async def mtls_cloud(tmp_path: Path, certs: Path) -> AsyncIterator[TLSDaemon]:
    async with cloud_daemon_tls(tmp_path, mtls_section(certs), certs=certs) as daemon:
        yield daemon


@pytest.fixture
async def jwks(certs: Path) -> AsyncIterator[JWKSServer]:
    server = JWKSServer(certs)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def jwt_cloud(tmp_path: Path, certs: Path, jwks: JWKSServer) -> AsyncIterator[TLSDaemon]:
    async with cloud_daemon_tls(tmp_path, jwt_section(certs, jwks), certs=certs, jwks=jwks) as daemon:
        yield daemon
