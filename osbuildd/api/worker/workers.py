"""``POST /workers`` (register) and ``POST /workers/{worker_id}/status`` (a worker's heartbeat), and
the task that forgets workers silent for ``[worker_api] worker_heartbeat_timeout``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from osbuildd.queue.workers import WorkerNotFound

from .artifacts import remove_stale_uploads
from .context import SERVICES, WORKERS, base, channel, parse_uuid, workers
from .errors import MALFORMED_WORKER_ID, WORKER_NOT_FOUND, WorkerError
from .validation import json_body

log = structlog.get_logger("osbuildd.worker_api")


async def post_workers(request: web.Request) -> web.Response:
    body = await json_body(request)
    worker_id = await workers(request).register(str(body["arch"]), channel(request))
    log.info("worker registered", worker_id=worker_id, arch=body["arch"])
    return web.json_response({"href": f"{base(request)}/workers", "id": worker_id, "kind": "WorkerID",
                              "worker_id": worker_id}, status=201)


async def post_status(request: web.Request) -> web.Response:
    worker_id = parse_uuid(request.match_info["worker_id"], MALFORMED_WORKER_ID, "worker id")
    try:
        await workers(request).status(worker_id)
    except WorkerNotFound as exc:
        raise WorkerError(WORKER_NOT_FOUND, exc.reason) from None
    return web.Response(status=200)


async def watch_workers(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: every ``worker_watch_interval`` drop the workers silent for longer than
    ``worker_heartbeat_timeout`` (their jobs are the job store's heartbeat watcher's), and remove the
    uploads of tokens no longer running (a job requeued after a missing heartbeat)."""
    cfg = app[SERVICES].config.worker_api
    store = app[WORKERS]

    async def loop() -> None:
        while True:
            await asyncio.sleep(cfg.worker_watch_interval)
            if not app[SERVICES].leader.leading:   # another daemon on the shared database sweeps
                continue
            try:
                dropped = await store.drop_silent(cfg.worker_heartbeat_timeout)
            except Exception:   # keep watching: one failed sweep must not stop the next
                log.exception("dropping silent workers failed")
                continue
            if dropped:
                log.info("silent workers dropped", workers=dropped)
            try:
                await remove_stale_uploads(app[SERVICES])
            except Exception:
                log.exception("removing stale artifact uploads failed")

    task = asyncio.create_task(loop(), name="osbuildd-worker-watcher")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_post(f"{prefix}/workers", post_workers)
    app.router.add_post(f"{prefix}/workers/{{worker_id}}/status", post_status)
