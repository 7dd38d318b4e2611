"""The worker protocol's client side (upstream ``internal/worker/client.go``), over aiohttp.

Every request rides out a lost connection: it is sent again after 0.5 s, doubling up to 30 s,
until the composer answers (or the worker stops). A 401 fetches a new OAuth token and sends once
more. Answers that are errors raise :class:`ComposerError`; on a job's token a 404 id 5 or a 400
id 6 is :class:`JobGone` (the job was requeued elsewhere, canceled, or finished).

Several composer addresses (daemons sharing one database, so worker ids and job tokens are valid on
each): the client uses one; a connection error, a timeout or a 5xx moves every later request to the
next address (round-robin), and the failed request is sent there after the usual backoff (an upload
from the file's start again, a result again: a daemon takes a repeated result of a token as done).
A 5xx other than 502/503/504 that every address gave in turn is the answer (a daemon bug, not an
outage). With one address nothing changes: 502/503/504 and lost connections are retried on it.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp
import structlog

from ..common.oauth import AuthError, Secret, TokenSource
from .config import WorkerSettings

log = structlog.get_logger("osbuildd.worker.client")

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=30, sock_connect=30, sock_read=60)
# a long poll that hears nothing for this long is asked again (a dead link must not hang it forever)
LONG_POLL_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=30, sock_connect=30, sock_read=600)
UPLOAD_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=30, sock_connect=30, sock_read=600)
JSON = {"Content-Type": "application/json"}
_RETRY_STATUS = frozenset({502, 503, 504})   # a proxy or a composer that is starting or going away
JOB_NOT_FOUND, JOB_NOT_RUNNING = "5", "6"
UNKNOWN_WORKER = "18"


class ComposerError(Exception):
    """The composer answered with an error (upstream's worker API Error body when it sent one)."""

    def __init__(self, status: int, body: Any, what: str) -> None:
        self.status = status
        self.body = body if isinstance(body, dict) else {}
        self.error_id = str(self.body.get("id", ""))
        reason = self.body.get("reason") or self.body.get("message") or ""
        super().__init__(f"{what}: {status}" + (f" (id {self.error_id}: {reason})" if self.error_id else ""))


class JobGone(ComposerError):
    """The job of a token is no longer this worker's to finish."""


class Untrusted(Exception):
    """The composer's certificate does not verify against the CA: sending again cannot help."""


class Stopped(Exception):
    """The worker is stopping: a request waiting to be sent again gives up."""


def ssl_context(settings: WorkerSettings) -> ssl.SSLContext | None:
    """https: the CA file (else the system store) and, without OAuth, the client certificate."""
    if not any(url.startswith("https://") for url in settings.composers or [settings.composer]):
        return None
    ca = settings.ca if settings.ca and (not settings.oauth or os.path.exists(settings.ca)) else None
    ctx = ssl.create_default_context(cafile=ca)
    if not settings.oauth or (settings.cert and os.path.exists(settings.cert)):
        ctx.load_cert_chain(settings.cert, settings.key)
    return ctx


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


class WorkerClient:
    def __init__(self, settings: WorkerSettings, stop: asyncio.Event | None = None,
                 tls: ssl.SSLContext | None = None) -> None:
        self.settings = settings
        self.roots = list(settings.composers or [settings.composer])
        self._current = 0
        self.base = settings.base_path
        self.stop = stop or asyncio.Event()
        self._tls = tls
        self.auth = (TokenSource(settings.token_url, settings.client_id,
                                 client_secret=Secret(file=settings.client_secret_file),
                                 offline_token=Secret(file=settings.offline_token_file)) if settings.oauth else None)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> WorkerClient:
        connector = aiohttp.TCPConnector(ssl=self._tls if self._tls is not None else False, limit=16)
        self._session = aiohttp.ClientSession(connector=connector)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "use the client as an async context manager"
        return self._session

    @property
    def root(self) -> str:
        """The composer requests go to now (``scheme://host[:port]``)."""
        return self.roots[self._current]

    def url(self, path: str, root: str | None = None) -> str:
        """``path`` absolute (a location the composer sent: the same on every daemon) or relative to
        the base path, on ``root`` (default: the current composer)."""
        return (root or self.root) + (path if path.startswith("/") else f"{self.base}/{path}")

    def _switch(self, failed: str, what: str, problem: str) -> None:
        """Move to the next composer after ``failed`` did not answer; a request that failed on a
        composer already left (others in flight did too) moves nothing."""
        if len(self.roots) < 2 or self.root != failed:
            return
        self._current = (self._current + 1) % len(self.roots)
        log.warning("composer unreachable, switching to the next", composer=failed, next=self.root,
                    request=what, problem=problem)

    # -- sending with retries ------------------------------------------------------------------

    async def _pause(self, delay: float) -> None:
        if self.stop.is_set():
            raise Stopped
        try:
            await asyncio.wait_for(self.stop.wait(), delay)
        except TimeoutError:
            return
        raise Stopped

    async def _headers(self, extra: dict[str, str], *, force: bool = False) -> dict[str, str]:
        if self.auth is None:
            return dict(extra)
        return {**extra, "Authorization": f"Bearer {await self.auth.token(self.session, force=force)}"}

    async def send(self, method: str, path: str, *, body: Any = None, what: str = "",
                   data: Callable[[], BinaryIO] | None = None, headers: dict[str, str] | None = None,
                   limits: aiohttp.ClientTimeout = REQUEST_TIMEOUT) -> tuple[int, Any]:
        """(status, decoded JSON body or None) of the first answer a composer gives (see the module's
        doc for several composers)."""
        what = what or f"{method} {path}"
        hdrs = dict(headers or (JSON if body is not None else {}))
        delay, refreshed, errors_5xx = BACKOFF_FIRST, False, 0
        while True:
            stream = None
            root = self.root
            try:
                payload: Any = json.dumps(body) if body is not None else None
                if data is not None:
                    payload = stream = data()   # opened again per attempt: an upload restarts
                async with self.session.request(method, self.url(path, root), data=payload, timeout=limits,
                                                headers=await self._headers(hdrs, force=refreshed)) as r:
                    raw = await r.read()
                    status = r.status
                if status == 401 and self.auth is not None and not refreshed:
                    refreshed = True   # a token the composer no longer takes: one fresh one
                    continue
                if status >= 500 and status not in _RETRY_STATUS and len(self.roots) > 1:
                    errors_5xx += 1
                    if errors_5xx >= len(self.roots):
                        return status, _decode(raw)
                elif status not in _RETRY_STATUS:
                    return status, _decode(raw)
                problem = f"answered {status}"
            except aiohttp.ClientConnectorCertificateError as exc:
                raise Untrusted(f"{root}: {exc.certificate_error}") from None
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError, AuthError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
                # the token endpoint failing says nothing of this composer: stay on it
                composer_failed = not isinstance(exc, AuthError)
            else:
                composer_failed = True
            finally:
                if stream is not None:
                    stream.close()
            if composer_failed and len(self.roots) > 1:
                self._switch(root, what, problem)
            log.warning("composer unreachable, retrying", request=what, problem=problem, retry_in=delay,
                        composer=self.root)
            await self._pause(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    # -- the operations ------------------------------------------------------------------------

    async def register(self, arch: str) -> str:
        status, body = await self.send("POST", "workers", body={"arch": arch}, what="POST /workers")
        if status != 201 or not isinstance(body, dict) or not body.get("worker_id"):
            raise ComposerError(status, body, "POST /workers")
        return str(body["worker_id"])

    async def worker_status(self, worker_id: str) -> None:
        status, body = await self.send("POST", f"workers/{worker_id}/status", body={}, what="POST /workers/{id}/status")
        if status != 200:
            raise ComposerError(status, body, "POST /workers/{id}/status")

    async def request_job(self, types: list[str], arch: str, worker_id: str | None) -> dict[str, Any] | None:
        """A job (upstream's RequestJobResponse), or None when the long poll ended without one."""
        req: dict[str, Any] = {"types": types, "arch": arch}
        if worker_id:
            req["worker_id"] = worker_id
        status, body = await self.send("POST", "jobs", body=req, what="POST /jobs", limits=LONG_POLL_TIMEOUT)
        if status == 204:
            return None
        if status != 201 or not isinstance(body, dict) or not body.get("location"):
            raise ComposerError(status, body, "POST /jobs")
        return body

    def _job_error(self, status: int, body: Any, what: str) -> ComposerError:
        err = ComposerError(status, body, what)
        if (status, err.error_id) in ((404, JOB_NOT_FOUND), (400, JOB_NOT_RUNNING)):
            return JobGone(status, body, what)
        return err

    async def job_canceled(self, location: str) -> bool:
        """GET /jobs/{token}: the heartbeat; whether the job was canceled."""
        status, body = await self.send("GET", location, what="GET /jobs/{token}")
        if status != 200 or not isinstance(body, dict):
            raise self._job_error(status, body, "GET /jobs/{token}")
        return bool(body.get("canceled"))

    async def update(self, location: str, update: dict[str, Any]) -> None:
        """PATCH /jobs/{token} with ``{"result": ...}`` or ``{"partial": ...}``."""
        what = "PATCH /jobs/{token}" + (" (partial)" if "partial" in update else "")
        status, body = await self.send("PATCH", location, body=update, what=what)
        if not 200 <= status < 300:   # a result sent again to another daemon may be answered otherwise
            raise self._job_error(status, body, what)

    async def put_artifact(self, artifact_location: str, name: str, path: Path) -> None:
        """PUT the file at ``path`` to ``artifact_location`` + ``name``, streamed from disk."""
        size = (await asyncio.to_thread(path.stat)).st_size
        location = artifact_location if artifact_location.endswith("/") else artifact_location + "/"
        status, body = await self.send(
            "PUT", location + name, data=lambda: open(path, "rb"), what="PUT /jobs/{token}/artifacts/{name}",  # noqa: SIM115 - closed by send
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            limits=UPLOAD_TIMEOUT)
        if status != 200:
            raise self._job_error(status, body, "PUT /jobs/{token}/artifacts/{name}")
