"""``PUT /jobs/{token}/artifacts/{name}``: a running job's artifact, streamed to
``<results_dir>/.uploads/<token>/<name>`` (never whole in memory; written off the event loop, the
next chunk read while the previous one is written). The file appears under its name complete or not
at all (written as ``.<name>.part`` first). Staged under the results root, so a worker that uploads
through one daemon can finish through another sharing ``[results] dir``. At start, upload directories
of tokens that are no longer a running job are removed; uploads found in the old staging place
``<state_dir>/artifacts/tmp`` (a state directory from before) are moved over first, so a job running
across the upgrade still finds its artifact, and that directory goes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

import structlog
from aiohttp import web

from osbuildd.compose import remote
from osbuildd.queue import JobStatus
from osbuildd.services import Services

from .context import SERVICES, artifacts_tmp, parse_uuid, running_job, services
from .errors import (
    BODY_DECODING,
    MALFORMED_JOB_ID,
    WRITING_ARTIFACT,
    EmptyAnswer,
    WorkerError,
)

log = structlog.get_logger("osbuildd.worker_api")
CHUNK = 1024 * 1024


def check_name(name: str) -> None:
    """One path component: no "/", not "." or "..", no NUL, at most 255 bytes (else 400 id 10)."""
    if (not name or "/" in name or "\0" in name or name in (".", "..") or name.startswith(".")
            or len(name.encode("utf-8", errors="surrogateescape")) > 255):
        raise WorkerError(BODY_DECODING, f"artifact name {name!r} is not a plain file name")


def _open(directory: Path, part: Path) -> BinaryIO:
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    return os.fdopen(fd, "wb")


async def _stream(request: web.Request, f: BinaryIO) -> int:
    """Copy the body to ``f``: chunks gathered to CHUNK bytes, each batch written in a thread (no
    copy: ``writelines``) while the next is read."""
    size = 0
    pending: asyncio.Future[None] | None = None
    batch: list[bytes] = []
    gathered = 0
    try:
        async for chunk in request.content.iter_chunked(CHUNK):
            batch.append(chunk)
            gathered += len(chunk)
            if gathered >= CHUNK:
                if pending is not None:
                    await pending
                size += gathered
                pending = asyncio.ensure_future(asyncio.to_thread(f.writelines, batch))
                batch, gathered = [], 0
    except BaseException:
        if pending is not None:   # the file is closed next: let the write in flight end first
            with contextlib.suppress(Exception):
                await asyncio.shield(pending)
        raise
    if pending is not None:
        await pending
    if batch:
        size += gathered
        await asyncio.to_thread(f.writelines, batch)
    return size


async def put_artifact(request: web.Request) -> web.Response:
    token = parse_uuid(request.match_info["token"], MALFORMED_JOB_ID)
    svc = services(request)
    if not svc.config.worker_api.enable_artifacts:
        raise EmptyAnswer(400)   # upstream: the worker learns the composer takes no artifacts
    name = request.match_info["name"]
    check_name(name)
    job = await running_job(request, token)
    directory = artifacts_tmp(svc, token)
    part, final = directory / f".{name}.part", directory / name
    try:
        f = await asyncio.to_thread(_open, directory, part)
    except OSError as exc:
        raise WorkerError(WRITING_ARTIFACT, f"cannot create the artifact: {exc.strerror}") from None
    try:
        try:
            size = await _stream(request, f)
        finally:
            await asyncio.to_thread(f.close)
        await asyncio.to_thread(os.replace, part, final)
    except BaseException:
        with contextlib.suppress(OSError):
            await asyncio.shield(asyncio.to_thread(part.unlink, True))
        raise
    log.info("artifact uploaded", job_id=job.id, name=name, size=size)
    return web.Response(status=200)


def _sweep(tmp: Path, running: set[str]) -> list[str]:
    removed = []
    if tmp.is_dir():
        for entry in tmp.iterdir():
            if entry.name not in running:
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
                removed.append(entry.name)
    return removed


def _adopt_legacy(legacy: Path, uploads: Path) -> list[str] | None:
    """Move the token directories under ``legacy`` into ``uploads`` (the stale sweep that follows
    drops those no longer running), then remove ``legacy``; None when there was none."""
    if not legacy.is_dir():
        return None
    moved = []
    uploads.mkdir(parents=True, exist_ok=True)
    for entry in legacy.iterdir():
        dst = uploads / entry.name
        if entry.is_dir() and not entry.is_symlink() and not dst.exists():
            with contextlib.suppress(OSError):
                shutil.move(entry, dst)   # a rename, or a copy when [results] dir is elsewhere
                moved.append(entry.name)
    shutil.rmtree(legacy, ignore_errors=True)
    with contextlib.suppress(OSError):   # artifacts/ held only tmp/; kept if anything else is there
        legacy.parent.rmdir()
    return moved


async def remove_stale_uploads(svc: Services) -> list[str]:
    """Remove ``<results_dir>/.uploads/<token>`` of tokens that are no longer a running job (requeued after a
    missing heartbeat, deleted, or settled while the daemon was down); the tokens removed."""
    running = {j.token for j in await svc.jobs.list(status=JobStatus.RUNNING) if j.token}
    removed = await asyncio.to_thread(_sweep, artifacts_tmp(svc), running)
    if removed:
        log.info("stale artifact uploads removed", tokens=removed)
    return removed


async def sweep_uploads(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: stale upload directories removed at start (and by the workers' watcher after),
    and the pre-``[results] dir`` staging directory with them."""
    svc = app[SERVICES]
    legacy = remote.legacy_artifacts_tmp(svc.config.state_dir)
    moved = await asyncio.to_thread(_adopt_legacy, legacy, artifacts_tmp(svc))
    if moved is not None:
        log.info("old artifact staging directory taken over", path=str(legacy), tokens=moved)
    await remove_stale_uploads(svc)
    yield


def add_routes(app: web.Application, prefix: str) -> None:
    # {name:.+}: a name with an encoded "/" reaches the handler (and is refused there, 400)
    app.router.add_put(f"{prefix}/jobs/{{token}}/artifacts/{{name:.+}}", put_artifact)
