"""Prometheus metrics (``GET /metrics``, text format 0.0.4) on the image-builder, Cloud and worker listeners.

Each daemon has one registry (``Services.metrics``); every listener's /metrics shows all of it. Names
are upstream's where upstream has the metric (osbuild-composer's ``internal/prometheus``,
image-builder-crc's), else ``osbuildd_``:

- ``image_builder_<subsystem>_request_count{method, path, code, subsystem, tenant}``: requests, per
  API: subsystem ``composer`` (Cloud API), ``worker`` (worker API), ``crc`` (image-builder API).
  prometheus-client writes a counter with the OpenMetrics ``_total`` suffix
  (``image_builder_composer_request_count_total``), where upstream's Go client writes none.
- ``image_builder_<subsystem>_http_duration_seconds{path, tenant}``: latency, upstream's buckets.
- ``image_builder_worker_pending_jobs`` / ``image_builder_worker_running_jobs{type, tenant}``: the
  queue by job type (upstream's: the type before ``:``, the job channel as tenant).
- ``osbuildd_composes{state}``: composes by state (every state, zeros included).
- ``osbuildd_leader``: 1 while this daemon runs the periodic sweeps (one daemon per shared database).

``path`` is the route's template (``/api/image-builder-composer/v2/composes/{id}``), never the raw
path; a request no route matched is ``unmatched``. ``tenant`` is the JWT tenant, else empty.
/metrics goes through the listener's authentication like any route: upstream composer serves it on
a listener of its own and exempts only /openapi and /errors from JWT.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from osbuildd.api.identity import IDENTITY
from osbuildd.compose import Compose, ComposeState
from osbuildd.compose.reads import Snapshot
from osbuildd.services import Services

__all__ = ["install", "metrics_handler", "metrics_middleware"]

SUBSYSTEMS = {"cloud": "composer", "worker": "worker", "imagebuilder": "crc"}
BUCKETS = (.025, .05, .075, .1, .2, .5, .75, 1, 1.5, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 20)   # upstream's
UNMATCHED = "unmatched"
PATH = "/metrics"
# what generate_latest() writes (legacy names, underscore escaping); prometheus-client 0.26 calls
# CONTENT_TYPE_LATEST the 1.0.0 format, which not every scraper negotiates
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class _Instruments:
    requests: Counter
    duration: Histogram


class _QueueCollector:
    """Composes by state and jobs by type: the numbers the /metrics handler last read (collect() is
    sync, so the handler refreshes them before it renders)."""

    def __init__(self) -> None:
        self.composes: dict[str, int] = dict.fromkeys(ComposeState, 0)
        self.jobs: dict[tuple[str, str, str], int] = {}
        self.leading = 1
        self._settled: tuple[int, dict[str, int]] = (-1, {})   # (snapshot version, its counts)

    def count_composes(self, snap: Snapshot) -> None:
        # settled composes change only with the snapshot's version: counted once per version
        version, settled = self._settled
        if snap.version < 0 or version != snap.version:
            settled = _by_state(snap.settled)
            if snap.version >= 0:
                self._settled = (snap.version, settled)
        live = _by_state(snap.live)
        self.composes = {str(s): settled.get(s, 0) + live.get(s, 0) for s in ComposeState}

    def collect(self) -> Iterable[Metric]:
        composes = GaugeMetricFamily("osbuildd_composes", "Composes by state.", labels=["state"])
        for state, n in self.composes.items():
            composes.add_metric([state], n)
        pending = GaugeMetricFamily("image_builder_worker_pending_jobs", "Currently pending jobs",
                                    labels=["type", "tenant"])
        running = GaugeMetricFamily("image_builder_worker_running_jobs", "Currently running jobs",
                                    labels=["type", "tenant"])
        by: dict[tuple[str, str, str], int] = {}
        for (jtype, channel, status), n in self.jobs.items():
            key = (jtype.split(":")[0], channel, status)
            by[key] = by.get(key, 0) + n
        for (jtype, channel, status), n in sorted(by.items()):
            (pending if status == "pending" else running).add_metric([jtype, channel], n)
        leader = GaugeMetricFamily("osbuildd_leader", "1 while this daemon runs the periodic sweeps"
                                   " (heartbeat watchdog, silent workers); one daemon per database.")
        leader.add_metric([], self.leading)
        return [composes, pending, running, leader]


def _by_state(composes: Iterable[Compose]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in composes:
        out[c.state] = out.get(c.state, 0) + 1
    return out


@dataclass
class _Daemon:
    """What one registry holds: each API's instruments (made once, even if an app is made again)
    and the queue collector. It keeps no reference to its registry (the key of ``_DAEMONS``)."""

    queue: _QueueCollector = field(default_factory=_QueueCollector)
    apis: dict[str, _Instruments] = field(default_factory=dict)

    def instruments(self, api: str, registry: CollectorRegistry) -> _Instruments:
        found = self.apis.get(api)
        if found is None:
            sub = SUBSYSTEMS.get(api, api)
            found = self.apis[api] = _Instruments(
                Counter(f"image_builder_{sub}_request_count", "total number of http requests",
                        ["method", "path", "code", "subsystem", "tenant"], registry=registry),
                Histogram(f"image_builder_{sub}_http_duration_seconds", "Duration of HTTP requests.",
                          ["path", "tenant"], buckets=BUCKETS, registry=registry))
        return found


_DAEMONS: weakref.WeakKeyDictionary[CollectorRegistry, _Daemon] = weakref.WeakKeyDictionary()
DAEMON = web.AppKey("osbuildd_metrics", _Daemon)
REGISTRY = web.AppKey("osbuildd_metrics_registry", CollectorRegistry)
SERVICES = web.AppKey("osbuildd_metrics_services", Services)


def _daemon(registry: CollectorRegistry) -> _Daemon:
    found = _DAEMONS.get(registry)
    if found is None:
        found = _DAEMONS[registry] = _Daemon()
        registry.register(found.queue)
    return found


def route_template(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


def _jwt_tenant(request: web.Request) -> str:
    ident = request.get(IDENTITY)
    return (ident.tenant if ident is not None else None) or ""


def metrics_middleware(api: str, tenant_of: Callable[[web.Request], str] = _jwt_tenant) -> Middleware:
    """Counts and times every request of the app of API ``api`` (outermost: it sees the status the
    error middleware answered). ``tenant_of``: the caller's tenant label (the JWT tenant by default;
    image-builder's org id)."""

    sub = SUBSYSTEMS.get(api, api)

    def record(request: web.Request, status: int, start: float) -> None:
        tenant = tenant_of(request)
        path = route_template(request)
        inst = request.app[DAEMON].apis[api]   # made by install()
        inst.requests.labels(request.method, path, str(status), sub, tenant).inc()
        inst.duration.labels(path, tenant).observe(time.perf_counter() - start)

    @web.middleware
    async def metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        try:
            response = await handler(request)
        except web.HTTPException as e:
            record(request, e.status, start)
            raise
        except Exception:   # what no error middleware answered: aiohttp's 500
            record(request, 500, start)
            raise
        # (a request cancelled by its client's disconnect is not counted: it has no status)
        record(request, response.status, start)
        return response

    return metrics


async def metrics_handler(request: web.Request) -> web.Response:
    """The daemon's metrics, the queue's numbers read now (one compose snapshot, one GROUP BY)."""
    daemon, services = request.app[DAEMON], request.app[SERVICES]
    daemon.queue.count_composes(await services.compose.snapshot())
    daemon.queue.jobs = await services.jobs.counts()
    daemon.queue.leading = int(services.leader.leading)
    body = await asyncio.to_thread(generate_latest, request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def install(app: web.Application, services: Services, api: str,
            tenant_of: Callable[[web.Request], str] = _jwt_tenant) -> None:
    """Serve ``GET /metrics`` on ``app`` and measure its requests (middleware first in the chain).
    Call before the app starts (its middlewares freeze then)."""
    # a stand-in without a registry (a test that only builds apps) gets one of its own
    found = getattr(services, "metrics", None)
    registry = found if isinstance(found, CollectorRegistry) else CollectorRegistry()
    app[DAEMON], app[REGISTRY], app[SERVICES] = _daemon(registry), registry, services
    app[DAEMON].instruments(api, registry)
    app.middlewares.insert(0, metrics_middleware(api, tenant_of))
    app.router.add_get(PATH, metrics_handler)
