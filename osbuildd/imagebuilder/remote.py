"""A composer's Cloud API v2 over HTTP(S) (``[image_builder] osbuild_url``), as image-builder-crc's
composer client talks to it: ``<osbuild_url>/api/image-builder-composer/v2``, authenticated by a
client certificate (``osbuild_cert_path``/``osbuild_key_path``) and/or OAuth2 bearer tokens from
``composer_token_url`` (client_credentials with ``composer_client_id``/``composer_client_secret``, or
the offline token's refresh grant), refreshed before they expire and once more after a 401.

The composer's certificate is verified against ``osbuild_ca_path`` alone when it is set (as upstream
pins it), else against the system trust store; the token endpoint (an SSO, usually public) against
the system store plus that CA. Answers that are not 2xx are :class:`ComposerError` with the Cloud
error object; a composer that cannot be reached is a ComposerError 502 (503 when it timed out), its
reason naming the composer's URL and the cause, never a secret.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import structlog

from ..common.oauth import AuthError, Secret, TokenSource, public_url
from ..config import ImageBuilderConfig
from .composer import JSON, ComposerError, Download

log = structlog.get_logger("osbuildd.imagebuilder.remote")

CLOUD_PATH = "/api/image-builder-composer/v2"
# a compose request is enqueued by the composer, not built: a minute without a byte is a dead link
TIMEOUT = aiohttp.ClientTimeout(total=180, connect=30, sock_connect=30, sock_read=60)
UNREACHABLE, TIMED_OUT = 502, 503
# an image streamed through: no total limit (it may be gigabytes), a minute without a byte is dead
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=30, sock_connect=30, sock_read=60)
ARTIFACT_NOT_FOUND = 1022   # the Cloud API's "no artifact to download (yet)"


def _base_url(osbuild_url: str) -> str:
    """The Cloud API root; ``osbuild_url`` is the composer's (a URL already ending in the API path is
    taken as it is)."""
    root = osbuild_url.rstrip("/")
    return root if root.endswith(CLOUD_PATH) else root + CLOUD_PATH


def _composer_context(cfg: ImageBuilderConfig) -> ssl.SSLContext:
    """Blocking (reads files): run off the loop."""
    ctx = ssl.create_default_context(cafile=cfg.osbuild_ca_path or None)
    if cfg.osbuild_cert_path:
        ctx.load_cert_chain(cfg.osbuild_cert_path, cfg.osbuild_key_path)
    return ctx


def _token_context(cfg: ImageBuilderConfig) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if cfg.osbuild_ca_path:
        ctx.load_verify_locations(cafile=cfg.osbuild_ca_path)
    return ctx


def _error_body(raw: bytes, status: int) -> JSON:
    """The Cloud error object the composer sent, else its text as the reason."""
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    text = raw.decode("utf-8", "replace").strip()[:500]
    return {"reason": text or f"the composer answered {status}"}


class RemoteComposer:
    """:class:`~osbuildd.imagebuilder.composer.Composer` over a composer's Cloud API."""

    def __init__(self, cfg: ImageBuilderConfig) -> None:
        self.cfg = cfg
        self.base = _base_url(cfg.osbuild_url)
        self.where = public_url(self.base)
        self.auth: TokenSource | None = None
        if cfg.composer_token_url:
            if not (cfg.composer_client_secret or cfg.composer_offline_token):
                raise ValueError("[image_builder] composer_token_url needs composer_client_secret "
                                 "or composer_offline_token")
            self.auth = TokenSource(cfg.composer_token_url, cfg.composer_client_id,
                                    client_secret=Secret(value=cfg.composer_client_secret),
                                    offline_token=Secret(value=cfg.composer_offline_token))
        self._session: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()

    # -- the session ----------------------------------------------------------------------------

    async def _get_session(self) -> aiohttp.ClientSession:
        async with self._lock:
            if self._session is None:
                https = self.base.startswith("https://")
                try:
                    ctx = await asyncio.to_thread(_composer_context, self.cfg) if https else None
                    if self.auth is not None and self.cfg.composer_token_url.startswith("https://"):
                        self.auth.ssl_context = await asyncio.to_thread(_token_context, self.cfg)
                except (OSError, ssl.SSLError) as exc:
                    # a missing or unreadable certificate/key/CA file: the path, not its contents
                    raise ComposerError(UNREACHABLE, {
                        "reason": f"composer at {self.where} is unreachable: TLS setup failed: "
                                  f"{getattr(exc, 'strerror', None) or exc}"}) from None
                connector = aiohttp.TCPConnector(ssl=ctx if ctx is not None else True, limit=32)
                self._session = aiohttp.ClientSession(connector=connector, timeout=TIMEOUT,
                                                      headers={"Accept": "application/json"})
            return self._session

    async def close(self) -> None:
        async with self._lock:
            if self._session is not None:
                await self._session.close()
                self._session = None

    # -- one request ----------------------------------------------------------------------------

    async def _headers(self, session: aiohttp.ClientSession, *, force: bool) -> dict[str, str]:
        if self.auth is None:
            return {}
        try:
            return {"Authorization": f"Bearer {await self.auth.token(session, force=force)}"}
        except AuthError as exc:
            raise ComposerError(UNREACHABLE, {
                "reason": f"composer at {self.where} is unreachable: no OAuth2 token: {exc}"}) from None

    async def _request(self, method: str, path: str, body: JSON | None = None) -> tuple[int, Any]:
        """(status, decoded JSON) of a 2xx answer; ComposerError for any other or for no answer."""
        session = await self._get_session()
        url = self.base + path
        payload = json.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        refreshed = False
        while True:
            auth = await self._headers(session, force=refreshed)
            try:
                async with session.request(method, url, data=payload, headers={**headers, **auth}) as r:
                    status, raw = r.status, await r.read()
            except aiohttp.ClientConnectorCertificateError as exc:
                raise self._unreachable(UNREACHABLE, f"certificate not trusted: {exc.certificate_error}") from None
            except aiohttp.ClientError as exc:
                raise self._unreachable(UNREACHABLE, f"{type(exc).__name__}: {exc}{self._hint(exc)}") from None
            except TimeoutError:
                raise self._unreachable(TIMED_OUT, f"no answer within {TIMEOUT.total:.0f} s") from None
            if status == 401 and self.auth is not None and not refreshed:
                refreshed = True   # a token the composer no longer takes: one fresh one
                log.info("composer refused the token, fetching another", composer=self.where)
                continue
            if not 200 <= status < 300:
                raise ComposerError(status, _error_body(raw, status))
            try:
                return status, json.loads(raw) if raw else None
            except ValueError:
                raise ComposerError(UNREACHABLE, {
                    "reason": f"composer at {self.where} answered {method} {path} with no JSON"}) from None

    def _hint(self, exc: aiohttp.ClientError) -> str:
        """A composer over mTLS drops a client without a certificate after the handshake (TLS 1.3)."""
        dropped = isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientSSLError, aiohttp.ClientOSError))
        if dropped and self.base.startswith("https://") and not self.cfg.osbuild_cert_path:
            return " (no client certificate is configured: osbuild_cert_path, osbuild_key_path)"
        return ""

    def _unreachable(self, status: int, why: str) -> ComposerError:
        log.warning("composer unreachable", composer=self.where, problem=why)
        return ComposerError(status, {"reason": f"composer at {self.where} is unreachable: {why}"})

    async def _json(self, method: str, path: str, body: JSON | None = None) -> JSON:
        _, answer = await self._request(method, path, body)
        if not isinstance(answer, dict):
            raise ComposerError(UNREACHABLE, {
                "reason": f"composer at {self.where} answered {method} {path} with no JSON object"})
        return answer

    # -- the operations -------------------------------------------------------------------------

    async def ready(self) -> None:
        await self._request("GET", "/openapi")

    async def compose(self, request: JSON, *, org_id: str, test: int | None = None) -> str:
        # org_id is not sent: the composer knows the tenant from the credentials
        if test is not None:
            raise ComposerError(400, {"reason": "test composes are not available from a remote composer"})
        answer = await self._json("POST", "/compose", request)
        compose_id = answer.get("id")
        if not isinstance(compose_id, str) or not compose_id:
            raise ComposerError(UNREACHABLE, {"reason": f"composer at {self.where} answered POST /compose without an id"})
        return compose_id

    async def status(self, compose_id: str) -> JSON:
        return await self._json("GET", f"/composes/{quote(compose_id, safe='')}")

    async def metadata(self, compose_id: str) -> JSON:
        return await self._json("GET", f"/composes/{quote(compose_id, safe='')}/metadata")

    async def logs(self, compose_id: str) -> bytes | None:
        # the Cloud API's /logs is the build's result as JSON, not osbuild's output
        raise ComposerError(404, {"reason": "logs are not available from a remote composer"})

    async def download(self, compose_id: str) -> Download | None:
        """The Cloud API's ``/composes/{id}/download`` streamed through (the connection is held until
        the Download's chunks are read or closed)."""
        session = await self._get_session()
        path = f"/composes/{quote(compose_id, safe='')}/download"
        try:
            resp = await session.get(self.base + path, headers=await self._headers(session, force=False),
                                     timeout=DOWNLOAD_TIMEOUT)
        except aiohttp.ClientError as exc:
            raise self._unreachable(UNREACHABLE, f"{type(exc).__name__}: {exc}{self._hint(exc)}") from None
        except TimeoutError:
            raise self._unreachable(TIMED_OUT, "no answer to the download") from None
        if not 200 <= resp.status < 300:
            raw = await resp.read()
            resp.release()
            err = ComposerError(resp.status, _error_body(raw, resp.status))
            if resp.status == 404 and err.error_id != 15 or err.error_id == ARTIFACT_NOT_FOUND:
                return None   # no image (yet); an unknown compose stays a 404 error
            raise err
        disposition = resp.content_disposition
        filename = (disposition.filename if disposition is not None else None) or f"{compose_id}.img"

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in resp.content.iter_chunked(1 << 20):
                    yield chunk
            finally:
                resp.release()

        return Download(filename, resp.content_length, chunks=chunks())

    async def distribution(self, name: str) -> JSON:
        return await self._json("GET", f"/distributions/{quote(name, safe='')}")

    async def search_packages(self, request: JSON) -> JSON:
        return await self._json("POST", "/search/packages", request)
