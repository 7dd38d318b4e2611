"""``RemoteComposer`` (image-builder's composer over ``osbuild_url``) against a second, real ``osbuildd
serve`` with its Cloud API on 127.0.0.1 (``[builder] local_executor = false``: composes stay pending,
nothing builds): over mTLS with gen-certs' client certificate, and over TLS + JWT with bearer tokens
from a token endpoint of the test's own (client_credentials and the offline token's refresh grant;
its first token is signed by a key the composer does not know, so the composer answers 401 once)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from cloud.tlsutil import (
    JWKSServer,
    SigningKey,
    TLSDaemon,
    cloud_daemon_tls,
    gen_certs,
    jwt_section,
    mtls_section,
    token,
)
from foundation.daemon_helpers import free_port

from osbuildd.config import ImageBuilderConfig
from osbuildd.imagebuilder.composer import ComposerError
from osbuildd.imagebuilder.remote import RemoteComposer

SECRET = "s3cr3t-value-for-the-sso"
REQUEST: dict[str, Any] = {
    "distribution": "debian-12",
    "image_request": {"architecture": "x86_64", "image_type": "guest-image",
                      "repositories": [{"baseurl": "http://deb.debian.org/debian"}],
                      "upload_targets": [{"type": "local", "upload_options": {}}]}}
# one composer daemon per configuration for the module: each test makes its own composer client
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gen_certs(tmp_path_factory.mktemp("certs"))


def root_of(daemon: TLSDaemon) -> str:
    """The composer's URL as ``OSBUILD_URL`` gives it (no API path)."""
    return f"https://localhost:{daemon.port}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mtls(tmp_path_factory: pytest.TempPathFactory, certs: Path) -> AsyncIterator[TLSDaemon]:
    async with cloud_daemon_tls(tmp_path_factory.mktemp("mtls"), mtls_section(certs), certs=certs) as daemon:
        yield daemon


def mtls_config(daemon: TLSDaemon, certs: Path, *, cert: bool = True) -> ImageBuilderConfig:
    pair = {"osbuild_cert_path": str(certs / "client-crt.pem"),
            "osbuild_key_path": str(certs / "client-key.pem")} if cert else {}
    return ImageBuilderConfig(osbuild_url=root_of(daemon), osbuild_ca_path=str(certs / "ca-crt.pem"), **pair)


async def test_mtls_compose_status_and_refusals(mtls: TLSDaemon, certs: Path) -> None:
    composer = RemoteComposer(mtls_config(mtls, certs))
    try:
        await composer.ready()
        compose_id = await composer.compose(REQUEST, org_id="000001")
        assert str(uuid.UUID(compose_id)) == compose_id
        status = await composer.status(compose_id)
        assert status["status"] == "pending", status
        assert "x86_64" in str(await composer.distribution("debian-12"))

        with pytest.raises(ComposerError) as err:
            await composer.compose({**REQUEST, "distribution": "nodistro-1"}, org_id="000001")
        assert (err.value.status, err.value.error_id) == (400, 4), err.value.body
        assert err.value.body["kind"] == "Error" and err.value.reason

        with pytest.raises(ComposerError) as err:
            await composer.status(str(uuid.uuid4()))
        assert err.value.status == 404, err.value.body
        with pytest.raises(ComposerError) as err:
            await composer.distribution("nodistro-1")
        assert err.value.status == 404, err.value.body
    finally:
        await composer.close()
    await composer.close()   # twice is fine

    # TLS that trusts the CA but has no client certificate: refused in the handshake
    bare = RemoteComposer(mtls_config(mtls, certs, cert=False))
    try:
        with pytest.raises(ComposerError) as err:
            await bare.ready()
        assert 400 <= err.value.status < 500 or (
            err.value.status in (502, 503) and f"composer at {root_of(mtls)}" in err.value.reason
            and "unreachable" in err.value.reason and "no client certificate" in err.value.reason), err.value.body
    finally:
        await bare.close()
    assert "Traceback" not in mtls.log_text()


async def test_unreachable_and_untrusted(tmp_path: Path, certs: Path, mtls: TLSDaemon) -> None:
    nobody = RemoteComposer(ImageBuilderConfig(osbuild_url=f"https://localhost:{free_port()}"))
    try:
        with pytest.raises(ComposerError) as err:
            await nobody.status(str(uuid.uuid4()))
        assert err.value.status == 502 and "is unreachable" in err.value.reason, err.value.body
    finally:
        await nobody.close()
    # the system trust store does not know gen-certs' CA
    untrusted = RemoteComposer(ImageBuilderConfig(osbuild_url=root_of(mtls),
                                                  osbuild_cert_path=str(certs / "client-crt.pem"),
                                                  osbuild_key_path=str(certs / "client-key.pem")))
    try:
        with pytest.raises(ComposerError) as err:
            await untrusted.ready()
        assert err.value.status == 502 and "certificate not trusted" in err.value.reason, err.value.body
    finally:
        await untrusted.close()
    missing = RemoteComposer(ImageBuilderConfig(osbuild_url=root_of(mtls), osbuild_ca_path=str(tmp_path / "no-ca.pem")))
    with pytest.raises(ComposerError) as err:
        await missing.ready()
    assert err.value.status == 502 and "TLS setup failed" in err.value.reason, err.value.body


# -- OAuth2 --------------------------------------------------------------------------------------

@dataclass
class TokenEndpoint:
    """``POST /token`` as an SSO's: the first ``bad`` tokens it issues are signed by a key the composer
    does not know (the composer answers 401), the others by ``jwks``' key, for tenant 000001."""

    jwks: JWKSServer
    client_id: str = "image-builder"
    bad: int = 1
    grants: list[dict[str, str]] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    async def _token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.grants.append(form)
        ok = form.get("client_id") == self.client_id and SECRET in (
            form.get("client_secret") if form.get("grant_type") == "client_credentials" else None,
            form.get("refresh_token") if form.get("grant_type") == "refresh_token" else None)
        if not ok:
            return web.json_response({"error": "invalid_client"}, status=401)
        key = SigningKey("unknown-key") if len(self.grants) <= self.bad else self.jwks.keys[0]
        return web.json_response({"access_token": token(key, tenant="000001", ttl=3600),
                                  "token_type": "Bearer", "expires_in": 3600})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/token", self._token)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def jwt_daemon(tmp_path_factory: pytest.TempPathFactory, certs: Path) -> AsyncIterator[tuple[TLSDaemon, JWKSServer]]:
    jwks = JWKSServer(certs)
    await jwks.start()
    try:
        async with cloud_daemon_tls(tmp_path_factory.mktemp("jwt"), jwt_section(certs, jwks), certs=certs,
                                    jwks=jwks) as daemon:
            yield daemon, jwks
    finally:
        await jwks.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def jwt_composer(jwt_daemon: tuple[TLSDaemon, JWKSServer]) -> AsyncIterator[tuple[TLSDaemon, TokenEndpoint]]:
    """The module's JWT composer and a token endpoint of the test's own (its grants counted from 0)."""
    daemon, jwks = jwt_daemon
    endpoint = TokenEndpoint(jwks)
    await endpoint.start()
    try:
        yield daemon, endpoint
    finally:
        await endpoint.stop()


@pytest.mark.parametrize("grant", ["client_credentials", "refresh_token"])
async def test_oauth_token_refetched_once_after_401(jwt_composer: tuple[TLSDaemon, TokenEndpoint], certs: Path,
                                                    grant: str) -> None:
    daemon, endpoint = jwt_composer
    secret = ({"composer_client_secret": SECRET} if grant == "client_credentials"
              else {"composer_offline_token": SECRET})
    composer = RemoteComposer(ImageBuilderConfig(
        osbuild_url=root_of(daemon), osbuild_ca_path=str(certs / "ca-crt.pem"),
        composer_token_url=endpoint.url, composer_client_id="image-builder", **secret))
    try:
        compose_id = await composer.compose(REQUEST, org_id="000001")
        # the first token was refused (401): one more was fetched, and it lasts (an hour)
        assert [g["grant_type"] for g in endpoint.grants] == [grant, grant]
        assert (await composer.status(compose_id))["status"] == "pending"
        await composer.ready()
        assert len(endpoint.grants) == 2
    finally:
        await composer.close()
    assert SECRET not in daemon.log_text()


async def test_oauth_refused_by_the_token_endpoint(jwt_composer: tuple[TLSDaemon, TokenEndpoint],
                                                   certs: Path) -> None:
    daemon, endpoint = jwt_composer
    composer = RemoteComposer(ImageBuilderConfig(
        osbuild_url=root_of(daemon), osbuild_ca_path=str(certs / "ca-crt.pem"),
        composer_token_url=endpoint.url, composer_client_id="image-builder",
        composer_client_secret="not-the-" + SECRET))
    try:
        with pytest.raises(ComposerError) as err:
            await composer.status(str(uuid.uuid4()))
        assert err.value.status == 502 and "token endpoint" in err.value.reason and "401" in err.value.reason
        assert SECRET not in str(err.value.body) and composer.auth is not None and SECRET not in repr(composer.auth.client_secret)
    finally:
        await composer.close()


async def test_oauth_second_401_is_the_answer(jwt_composer: tuple[TLSDaemon, TokenEndpoint], certs: Path) -> None:
    daemon, endpoint = jwt_composer
    endpoint.bad = 100   # every token under the unknown key
    composer = RemoteComposer(ImageBuilderConfig(
        osbuild_url=root_of(daemon), osbuild_ca_path=str(certs / "ca-crt.pem"),
        composer_token_url=endpoint.url, composer_client_id="image-builder", composer_offline_token=SECRET))
    try:
        with pytest.raises(ComposerError) as err:
            await composer.status(str(uuid.uuid4()))
        assert (err.value.status, err.value.error_id) == (401, 401), err.value.body
        assert len(endpoint.grants) == 2   # one refetch, not a loop
    finally:
        await composer.close()
