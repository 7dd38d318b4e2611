"""The worker API (upstream osbuild-composer's ``[worker]`` listener, ``<base_path>`` default
``/api/worker/v1``): remote osbuild-workers register, take jobs from the job store, report progress,
upload artifacts and settle their jobs.

One aiohttp application: the error middleware outermost (every failure in upstream's worker error
shape, ``errors``), then authentication (``osbuildd.api.auth`` per ``[worker_api]``: mTLS or JWT,
``/openapi`` and ``/errors`` exempt from JWT), then the check of JSON bodies against the spec
(``validation``), then the handlers by resource: ``meta`` (status, openapi, errors), ``workers``,
``jobs``, ``artifacts``. What a remote build's partials and result do to the compose lives in
``osbuildd.compose.remote``. Jobs are dequeued with ``owner=<worker id>`` (or "remote"), so the job
store's heartbeat watcher requeues those whose token goes silent (docs/CONTRACTS.md "Job queue").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from osbuildd.api import auth, metrics
from osbuildd.queue.workers import WorkerStore
from osbuildd.services import Services

from . import artifacts, jobs, meta, workers
from .context import BASE, CLOSING, SERVICES, TAKERS, WORKERS
from .errors import WorkerError, worker_errors
from .validation import BODIES, body_validators, validate_request

__all__ = ["WorkerError", "create_app"]


def _public(base: str) -> Callable[[str], bool]:
    prefixes = (f"{base}/openapi", f"{base}/errors")
    return lambda path: any(path == p or path.startswith(p + "/") for p in prefixes)


def create_app(services: Services) -> web.Application:
    """The worker API over the daemon's shared services; its tasks (dropping silent workers, removing
    stale uploads at start) run while the app does."""
    cfg = services.config.worker_api
    base = cfg.base_path
    app = web.Application(middlewares=[worker_errors(base), *auth.middlewares(cfg, exempt=_public(base)),
                                       validate_request],
                          client_max_size=64 * 1024 * 1024)
    app[SERVICES] = services
    app[BASE] = base
    app[WORKERS] = WorkerStore(services.db)
    app[BODIES] = body_validators(base)
    for module in (meta, workers, jobs, artifacts):
        module.add_routes(app, base)
    metrics.install(app, services, "worker")   # GET /metrics, behind the same authentication
    app[CLOSING] = asyncio.Event()
    app[TAKERS] = {}

    async def closing(app: web.Application) -> None:   # before open requests are waited for
        app[CLOSING].set()

    app.on_shutdown.append(closing)
    app.cleanup_ctx.append(artifacts.sweep_uploads)
    app.cleanup_ctx.append(workers.watch_workers)
    return app
