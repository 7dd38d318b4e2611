"""Real TLS for tests: ``osbuildd serve`` with a Cloud API listener over mTLS or JWT, client contexts made
from ``osbuildd gen-certs`` output, certificates from another CA or expired, a JWKS server over HTTPS on
127.0.0.1 and signed tokens. Shared by every test that talks to the Cloud API over TCP
(fixtures in tests/cloud/conftest.py)."""

from __future__ import annotations

import asyncio
import datetime
import json
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import tomli_w
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from foundation.daemon_helpers import NotifySocket, daemon_env, free_port

from osbuildd import certs as gencerts

CLOUD = "/api/image-builder-composer/v2"
REPO = Path(__file__).resolve().parents[2]


# -- certificates ---------------------------------------------------------------------------------

def gen_certs(directory: Path, *sans: str) -> Path:
    """``osbuildd gen-certs DIR`` itself, as a user runs it."""
    args = [a for s in sans for a in ("--san", s)]
    subprocess.run([sys.executable, "-m", "osbuildd.cli", "gen-certs", str(directory), *args],
                   cwd=REPO, check=True, capture_output=True)
    return directory


def client_context(certs: Path, name: str | None = "client", *, cert: Path | None = None,
                   key: Path | None = None) -> ssl.SSLContext:
    """Trusts ``certs``' CA; presents ``<name>-crt.pem`` (or ``cert``/``key``); ``name=None``: no certificate."""
    ctx = ssl.create_default_context(cafile=str(certs / "ca-crt.pem"))
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key))
    elif name is not None:
        ctx.load_cert_chain(str(certs / f"{name}-crt.pem"), str(certs / f"{name}-key.pem"))
    return ctx


def _write_pair(issued: gencerts.Issued, directory: Path, stem: str) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    crt, key = directory / f"{stem}-crt.pem", directory / f"{stem}-key.pem"
    crt.write_bytes(issued.cert_pem())
    key.write_bytes(issued.key_pem())
    key.chmod(0o600)
    return crt, key


def load_ca(certs: Path) -> gencerts.Issued:
    cert = x509.load_pem_x509_certificate((certs / "ca-crt.pem").read_bytes())
    key = serialization.load_pem_private_key((certs / "ca-key.pem").read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return gencerts.Issued(cert, key)


def foreign_client(directory: Path) -> tuple[Path, Path]:
    """A client certificate with the right names from another CA."""
    other = gencerts.make_ca("other.example")
    return _write_pair(gencerts.issue(other, "client.osbuild.org", ["client.osbuild.org"], server=False),
                       directory, "foreign")


def expired_client(certs: Path, directory: Path) -> tuple[Path, Path]:
    """Signed by ``certs``' CA, with the right names, valid for a day a year ago."""
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=400)
    return _write_pair(gencerts.issue(load_ca(certs), "client.osbuild.org", ["client.osbuild.org"], server=False,
                                      not_before=start, days=1), directory, "expired")


def named_client(certs: Path, directory: Path, cn: str, names: list[str], stem: str) -> tuple[Path, Path]:
    """Signed by ``certs``' CA with the given CN and SAN names (``[]``: none)."""
    return _write_pair(gencerts.issue(load_ca(certs), cn, names, server=False), directory, stem)


# -- JWKS and tokens ------------------------------------------------------------------------------

@dataclass
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))

    def jwk(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}


class JWKSServer:
    """``GET /certs`` over HTTPS on 127.0.0.1 (the gen-certs server certificate), counting fetches."""

    def __init__(self, certs: Path) -> None:
        self.certs = certs
        self.keys: list[SigningKey] = [SigningKey("key-1")]
        self.hits = 0
        self.port = free_port()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}/certs"

    def document(self) -> dict[str, Any]:
        return {"keys": [k.jwk() for k in self.keys]}

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(self.document()))
        return path

    async def _certs(self, request: web.Request) -> web.Response:
        self.hits += 1
        return web.json_response(self.document())

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/certs", self._certs)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(self.certs / "composer-crt.pem"), str(self.certs / "composer-key.pem"))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=ctx).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def rotate(self, kid: str) -> SigningKey:
        """A new signing key replaces every old one."""
        self.keys = [SigningKey(kid)]
        return self.keys[0]


def token(key: SigningKey, *, tenant: str | None = "000001", ttl: float = 300, kid: str | None = None,
          tenant_claim: str = "rh-org-id", **claims: Any) -> str:
    """A JWT signed by ``key`` (``kid`` overrides the header's key id); ``tenant=None``: no tenant claim."""
    now = int(time.time())
    body: dict[str, Any] = {"sub": "user-1", "iat": now, "exp": now + int(ttl), **claims}
    if tenant is not None:
        body[tenant_claim] = tenant
    return jwt.encode(body, key.private, algorithm="RS256", headers={"kid": kid or key.kid})


# -- the daemon -----------------------------------------------------------------------------------

@dataclass
class TLSDaemon:
    port: int
    base: str                 # https://localhost:<port>/api/image-builder-composer/v2 (http:// without TLS)
    certs: Path | None
    state: Path
    weldr: Path               # the Weldr unix socket
    log: Path
    proc: asyncio.subprocess.Process
    jwks: JWKSServer | None = None

    def client(self, ssl_context: ssl.SSLContext | bool | None = None,
               headers: Mapping[str, str] | None = None) -> aiohttp.ClientSession:
        """A session for ``base``; ``ssl_context`` None: the default client (gen-certs' client cert)."""
        if ssl_context is None and self.certs is not None and self.base.startswith("https"):
            ssl_context = client_context(self.certs)
        connector = aiohttp.TCPConnector(ssl=ssl_context if ssl_context is not None else False)
        return aiohttp.ClientSession(connector=connector, headers=headers,
                                     timeout=aiohttp.ClientTimeout(total=600))

    def token(self, tenant: str | None = "000001", **kw: Any) -> str:
        """A token signed by the JWKS server's current key."""
        assert self.jwks is not None
        return token(self.jwks.keys[0], tenant=tenant, **kw)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def mtls_section(certs: Path, **overrides: Any) -> dict[str, Any]:
    return {"cert": str(certs / "composer-crt.pem"), "key": str(certs / "composer-key.pem"),
            "ca": str(certs / "ca-crt.pem"), "allowed_domains": ["client.osbuild.org"], **overrides}


def jwt_section(certs: Path, jwks: JWKSServer, **overrides: Any) -> dict[str, Any]:
    return {"cert": str(certs / "composer-crt.pem"), "key": str(certs / "composer-key.pem"),
            "enable_mtls": False, "enable_jwt": True, "jwt_keys_urls": [jwks.url],
            "jwt_ca_file": str(certs / "ca-crt.pem"), **overrides}


def write_config(tmp_path: Path, cloud: dict[str, Any], builder: dict[str, Any] | None = None,
                 **extra: Any) -> tuple[Path, Path, Path]:
    """(config file, state dir, weldr socket)."""
    state, run = tmp_path / "state", tmp_path / "run"
    run.mkdir(parents=True, exist_ok=True)
    data = {"state_dir": str(state), "log_format": "json", "weldr": {"socket": str(run / "weldr.socket")},
            "cloud": cloud, "builder": builder if builder is not None else {"local_executor": False}, **extra}
    config = tmp_path / "osbuildd.toml"
    config.write_text(tomli_w.dumps(data))
    return config, state, run / "weldr.socket"


async def serve(config: Path, tmp_path: Path, *args: str,
                log_name: str = "daemon.log") -> tuple[asyncio.subprocess.Process, NotifySocket, Path]:
    """``osbuildd serve --config FILE --composer-config "" ARGS`` (no host osbuild-composer.toml)."""
    notify = NotifySocket(tmp_path / f"notify-{free_port()}.sock")
    log = tmp_path / log_name
    with await asyncio.to_thread(open, log, "wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "osbuildd.cli", "serve", "--config", str(config),
            *(args or ("--composer-config", "")), cwd=REPO, env=daemon_env(REPO, notify), stdout=err, stderr=err)
    return proc, notify, log


async def stop(proc: asyncio.subprocess.Process) -> int:
    if proc.returncode is None:
        proc.terminate()
        async with asyncio.timeout(60):
            await proc.wait()
    return proc.returncode or 0


@asynccontextmanager
async def cloud_daemon_tls(tmp_path: Path, cloud: dict[str, Any], *, certs: Path | None,
                           jwks: JWKSServer | None = None, builder: dict[str, Any] | None = None,
                           **extra: Any) -> AsyncIterator[TLSDaemon]:
    """``osbuildd serve`` with ``[cloud]`` = ``cloud`` (``listen`` added: a free 127.0.0.1 port);
    yields once READY=1 was sent; stops it (and checks it exits 0) after."""
    port = free_port()
    config, state, weldr = write_config(tmp_path, {"listen": f"127.0.0.1:{port}", **cloud}, builder, **extra)
    proc, notify, log = await serve(config, tmp_path)
    tls = cloud.get("enable_tls", True)
    try:
        await notify.wait_for("READY=1", proc)
        yield TLSDaemon(port, f"{'https' if tls else 'http'}://localhost:{port}{CLOUD}", certs, state, weldr,
                        log, proc, jwks)
    finally:
        rc = await stop(proc)
        notify.close()
    assert rc == 0, log.read_text()


# -- answers --------------------------------------------------------------------------------------

@dataclass
class Answer:
    status: int
    body: Any


async def get(session: aiohttp.ClientSession, url: str, **kw: Any) -> Answer:
    async with session.get(url, **kw) as resp:
        text = await resp.text()
        try:
            body = json.loads(text)
        except ValueError:
            body = text
        return Answer(resp.status, body)


def passed_auth(answer: Answer) -> bool:
    """The request got past authentication: a route's answer, or the unknown-route 404 (id 21) while
    the route is not there yet."""
    if answer.status == 200:
        return True
    return answer.status == 404 and isinstance(answer.body, dict) and answer.body.get("id") == "21"


def cloud_error(answer: Answer, status: int, error_id: int) -> dict[str, Any]:
    """``answer`` is a Cloud API error in upstream's shape with this status and id."""
    assert answer.status == status, answer
    body = answer.body
    assert isinstance(body, dict), body
    assert body["kind"] == "Error" and body["id"] == str(error_id), body
    assert body["code"] == f"IMAGE-BUILDER-COMPOSER-{error_id}" and body["href"] == f"{CLOUD}/errors/{error_id}"
    assert body["operation_id"], body
    return body
